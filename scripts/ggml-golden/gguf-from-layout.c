// Writes a GGUF file from a layout (scripts/ggml-golden/deepseek2-layout.py) with gguf.cpp: the header for
// real, the F32 tensor data as a sparse hole (ftruncate), so llama-quantize --dry-run can plan even a
// full-size model without the bytes. With --imatrix it writes an importance matrix for the layout instead
// (`<tensor>.in_sum2` = 1 and `<tensor>.counts` = 1 per expert, with llama-imatrix's metadata keys).
//
//   gguf-from-layout [--imatrix] LAYOUT.txt OUT.gguf
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ggml.h"
#include "gguf.h"

int main(int argc, char **argv) {
    int imatrix = argc == 4 && strcmp(argv[1], "--imatrix") == 0;
    if (argc != 3 + imatrix) {
        fprintf(stderr, "usage: %s [--imatrix] LAYOUT.txt OUT.gguf\n", argv[0]);
        return 64;
    }
    FILE *in = fopen(argv[1 + imatrix], "r");
    if (!in) { perror(argv[1 + imatrix]); return 1; }
    struct ggml_init_params params = {256 * 1024 * 1024, NULL, true};  // no_alloc: shapes only
    struct ggml_context *g = ggml_init(params);
    struct gguf_context *ctx = gguf_init_empty();
    if (imatrix) {
        const char *datasets[1] = {"smelt-golden"};
        gguf_set_val_str(ctx, "general.type", "imatrix");
        gguf_set_arr_str(ctx, "imatrix.datasets", datasets, 1);
        gguf_set_val_u32(ctx, "imatrix.chunk_count", 1);
        gguf_set_val_u32(ctx, "imatrix.chunk_size", 512);
    }
    char line[4096];
    size_t data = 0;
    struct ggml_tensor *owned[8192];
    float *payload[8192];
    int n_owned = 0;
    while (fgets(line, sizeof line, in)) {
        char kind[16], a[512], b[512], c[2048];
        if (sscanf(line, "%15s", kind) != 1) continue;
        if (strcmp(kind, "kv") == 0 && !imatrix) {
            if (sscanf(line, "kv %511s %511s %2047[^\n]", a, b, c) != 3) { fprintf(stderr, "bad kv: %s", line); return 1; }
            if (strcmp(a, "u32") == 0) gguf_set_val_u32(ctx, b, (uint32_t)strtoul(c, NULL, 10));
            else if (strcmp(a, "f32") == 0) gguf_set_val_f32(ctx, b, strtof(c, NULL));
            else if (strcmp(a, "bool") == 0) gguf_set_val_bool(ctx, b, strcmp(c, "True") == 0 || strcmp(c, "true") == 0);
            else gguf_set_val_str(ctx, b, c);
        } else if (strcmp(kind, "tensor") == 0) {
            int64_t ne[4] = {1, 1, 1, 1};
            int n = sscanf(line, "tensor %511s %ld %ld %ld", a, (long *)&ne[0], (long *)&ne[1], (long *)&ne[2]) - 1;
            if (n < 1) { fprintf(stderr, "bad tensor: %s", line); return 1; }
            if (!imatrix) {
                struct ggml_tensor *t = ggml_new_tensor(g, GGML_TYPE_F32, n, ne);
                ggml_set_name(t, a);
                gguf_add_tensor(ctx, t);
                data += GGML_PAD(ggml_nbytes(t), 32);
                continue;
            }
            // llama-quantize looks weights of 2-D and 3-D tensors up by name; n_expert = ne[2].
            size_t len = strlen(a);
            if (n < 2 || len < 7 || strcmp(a + len - 7, ".weight") != 0) continue;
            char name[600];
            for (int part = 0; part < 2; ++part) {
                int64_t shape[2] = {part == 0 ? ne[0] : 1, ne[2]};
                snprintf(name, sizeof name, "%s.%s", a, part == 0 ? "in_sum2" : "counts");
                struct ggml_tensor *t = ggml_new_tensor(g, GGML_TYPE_F32, 2, shape);
                ggml_set_name(t, name);
                float *values = malloc(ggml_nbytes(t));
                for (int64_t i = 0; i < shape[0] * shape[1]; ++i) values[i] = 1.0f;
                gguf_add_tensor(ctx, t);
                gguf_set_tensor_data(ctx, name, values);
                owned[n_owned] = t;
                payload[n_owned++] = values;
            }
        }
    }
    fclose(in);
    if (!gguf_write_to_file(ctx, argv[2 + imatrix], /*only_meta =*/ !imatrix)) { fprintf(stderr, "write failed\n"); return 1; }
    if (!imatrix) {
        // Extend the file over the data section without writing it (sparse).
        const size_t size = gguf_get_meta_size(ctx) + data;
        if (truncate(argv[2], (off_t)size) != 0) { perror("truncate"); return 1; }
    }
    for (int i = 0; i < n_owned; ++i) free(payload[i]);
    (void)owned;
    gguf_free(ctx);
    ggml_free(g);
    return 0;
}
