// Golden data for Smelt's GGML/GGUF tests, made by ggml's own code (the llama.cpp vendored by
// llama-cpp-python 0.3.36). Built and run by scripts/make-golden-ggml; see Tests/GGMLTests/Golden/README.md.
//
//   harness OUT_DIR SCRATCH_DIR
//
// OUT_DIR gets the committed files: input.f32, imatrix.f32, <TYPE>.bin (ggml_quantize_chunk without an
// importance matrix, i.e. quantize_row_<type>_ref), <TYPE>-imatrix.bin (with one, the path llama-quantize
// takes with --imatrix), IQ4_NL-ref.bin (quantize_row_iq4_nl_ref) and golden.gguf (written by gguf.cpp).
// SCRATCH_DIR gets <TYPE>.dequant.f32 (the type's to_float on <TYPE>.bin); the script records their SHA-256.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml.h"
#include "ggml-quants.h"
#include "gguf.h"

#define ROWS 64
#define COLS 512
#define EDGE_ROWS 24

static uint64_t rng_state;

static uint64_t splitmix64(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double uniform01(void) { return (double)(splitmix64() >> 11) * 0x1.0p-53; }

static double gaussian(void) {
    double u = uniform01(), v = uniform01();
    if (u < 1e-300) u = 1e-300;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static float bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000u;
    memcpy(&x, &u, 4);
    return x;
}

static void fill_edge_row(int r, float *x) {
    static const int8_t iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
    static const int8_t fp4x2[8] = {0, 1, 2, 3, 4, 6, 8, 12};
    for (int j = 0; j < COLS; ++j) {
        float v = 0;
        switch (r) {
            case 0: v = 0; break;                                                  // all zero
            case 1: v = 0.5f; break;                                               // constant
            case 2: v = -3.0f; break;                                              // constant negative
            case 3: v = (j == 37) ? 10.0f : 0.0f; break;                           // one outlier, rest zero
            case 4: v = (float)(gaussian() * 1e-16); break;                        // below GROUP_MAX_EPS
            case 5: v = (float)(gaussian() * 1e-40); break;                        // subnormal
            case 6: v = (float)(gaussian() * 1e30); break;                         // F16 scale overflows
            case 7: v = (float)(gaussian() * 3e4); break;                          // near F16 max
            case 8: v = (j % 32 == 0) ? 127.0f : 0.5f * (float)((j * 7) % 127 - 63); break; // Q8_0 ties (d = 1)
            case 9: v = (j % 32 == 0) ? -8.0f : 0.25f * (float)((j * 5) % 64 - 32); break;  // Q4_0 ties (d = 1)
            case 10: v = (float)uniform01(); break;                                // all positive
            case 11: v = -(float)uniform01(); break;                               // all negative
            case 12: v = (j & 1) ? 1.0f : -1.0f; break;                            // alternating
            case 13: v = -1.0f + 2.0f * (float)j / (COLS - 1); break;              // ramp
            case 14: v = (float)(gaussian() * pow(10.0, -6.0 + 9.0 * (j / 32) / 15.0)); break; // block dynamic range
            case 15: v = (float)(gaussian() * ((j % 61 == 3) ? 0.6 : 0.02)); break;            // outlier columns
            case 16: v = (float)((j * 3) % 8 - 4); break;                          // integers -4..3
            case 17: v = 0.01f * iq4nl[(j * 7) % 16]; break;                       // IQ4_NL grid points
            case 18: {                                                             // E2M1 grid points and midpoints
                int k = (j * 5) % 15;
                float g = (k % 2 == 0) ? fp4x2[k / 2] : 0.5f * (fp4x2[k / 2] + fp4x2[k / 2 + 1]);
                v = ((j / 16) & 1 ? -1.0f : 1.0f) * g * 0.25f;
            } break;
            case 19: {                                                             // amax at / just below 2^k
                float p = ldexpf(1.0f, (j / 32) - 8);
                v = (j % 32 == 0) ? ((j / 32) & 1 ? p : nextafterf(p, 0)) : p * (float)uniform01() * 0.9f;
            } break;
            case 20: v = (j % 32 == 0) ? 2.0f : (j % 32 == 1) ? -2.0f : (float)gaussian(); break; // |max| tie, first wins
            case 21: v = (j % 3 == 0) ? -0.0f : (j % 3 == 1) ? 0.0f : (float)(gaussian() * 0.01); break;
            case 22: v = (j / 32 == 3) ? 0.0f : (float)(gaussian() * 0.02); break;  // one zero 32-block
            case 23: v = (j / 16 == 5) ? (float)(gaussian() * 1e-20) : (float)(gaussian() * 0.02); break;
        }
        x[j] = v;
    }
}

static void fill_random_row(int r, float *x) {
    const double scale = 0.02 * (1.0 + (r % 5));
    for (int j = 0; j < COLS; ++j) {
        double g = gaussian();
        if (r % 3 == 0) g *= (uniform01() < 0.01) ? 12.0 : 1.0;     // rare single outliers
        if (r % 4 == 1) g = g * g * g / 3.0;                           // heavy tails
        float v = (float)(g * scale);
        x[j] = (r % 2 == 0) ? bf16_round(v) : v;                       // half the rows hold BF16 values
    }
}

static void write_file(const char *dir, const char *name, const void *data, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

struct golden_type {
    enum ggml_type type;
    const char *name;
    int uses_imatrix;
};

static const struct golden_type types[] = {
    {GGML_TYPE_F16, "F16", 0},     {GGML_TYPE_BF16, "BF16", 0},   {GGML_TYPE_Q8_0, "Q8_0", 0},
    {GGML_TYPE_Q4_0, "Q4_0", 1},   {GGML_TYPE_Q4_1, "Q4_1", 1},   {GGML_TYPE_Q5_0, "Q5_0", 1},
    {GGML_TYPE_Q5_1, "Q5_1", 1},   {GGML_TYPE_Q2_K, "Q2_K", 1},   {GGML_TYPE_Q3_K, "Q3_K", 1},
    {GGML_TYPE_Q4_K, "Q4_K", 1},   {GGML_TYPE_Q5_K, "Q5_K", 1},   {GGML_TYPE_Q6_K, "Q6_K", 1},
    {GGML_TYPE_IQ4_NL, "IQ4_NL", 1}, {GGML_TYPE_MXFP4, "MXFP4", 0},
};

static void write_golden_gguf(const char *out_dir) {
    struct gguf_context *ctx = gguf_init_empty();
    gguf_set_val_str(ctx, "general.architecture", "smelt-golden");
    gguf_set_val_u8(ctx, "test.u8", 200);
    gguf_set_val_i8(ctx, "test.i8", -100);
    gguf_set_val_u16(ctx, "test.u16", 65000);
    gguf_set_val_i16(ctx, "test.i16", -32000);
    gguf_set_val_u32(ctx, "test.u32", 4000000000u);
    gguf_set_val_i32(ctx, "test.i32", -2000000000);
    gguf_set_val_f32(ctx, "test.f32", 0.1f);
    gguf_set_val_u64(ctx, "test.u64", 18000000000000000000ull);
    gguf_set_val_i64(ctx, "test.i64", -9000000000000000000ll);
    gguf_set_val_f64(ctx, "test.f64", -2.5e-300);
    gguf_set_val_bool(ctx, "test.bool", true);
    gguf_set_val_str(ctx, "test.string", "h\xc3\xa9llo\n\"world\"");
    gguf_set_val_str(ctx, "test.empty_string", "");
    const int32_t ints[5] = {1, -2, 3, -4, 5};
    gguf_set_arr_data(ctx, "test.array.i32", GGUF_TYPE_INT32, ints, 5);
    const float floats[3] = {1.5f, -0.0f, 1e-45f};
    gguf_set_arr_data(ctx, "test.array.f32", GGUF_TYPE_FLOAT32, floats, 3);
    const int8_t bools[4] = {1, 0, 1, 1};
    gguf_set_arr_data(ctx, "test.array.bool", GGUF_TYPE_BOOL, bools, 4);
    const char *strings[3] = {"a", "", "<|end|>"};
    gguf_set_arr_str(ctx, "test.array.string", strings, 3);
    gguf_set_arr_data(ctx, "test.array.empty_u64", GGUF_TYPE_UINT64, NULL, 0);
    gguf_set_val_u32(ctx, "general.alignment", 32);

    struct ggml_init_params params = {64 * 1024 * 1024, NULL, false};
    struct ggml_context *g = ggml_init(params);
    struct ggml_tensor *a = ggml_new_tensor_1d(g, GGML_TYPE_F32, 7);
    ggml_set_name(a, "a.norm.weight");
    for (int i = 0; i < 7; ++i) ((float *)a->data)[i] = (float)i - 3.5f;
    struct ggml_tensor *b = ggml_new_tensor_2d(g, GGML_TYPE_F16, 3, 5);
    ggml_set_name(b, "b.f16");
    for (int i = 0; i < 15; ++i) ((ggml_fp16_t *)b->data)[i] = ggml_fp32_to_fp16((float)i * 0.25f);
    struct ggml_tensor *c = ggml_new_tensor_3d(g, GGML_TYPE_Q4_K, 256, 2, 3);
    ggml_set_name(c, "blk.0.ffn_down_exps.weight_with_a_name_that_is_sixty-three_byte");
    for (size_t i = 0; i < ggml_nbytes(c); ++i) ((uint8_t *)c->data)[i] = (uint8_t)(i * 37 + 11);
    struct ggml_tensor *d = ggml_new_tensor_2d(g, GGML_TYPE_Q8_0, 64, 1);
    ggml_set_name(d, "d.trailing_one");  // ne = {64, 1}: gguf.cpp writes n_dims = 1
    for (size_t i = 0; i < ggml_nbytes(d); ++i) ((uint8_t *)d->data)[i] = (uint8_t)(255 - i);
    struct ggml_tensor *e = ggml_new_tensor_4d(g, GGML_TYPE_I32, 1, 2, 1, 2);
    ggml_set_name(e, "e.i32");
    for (int i = 0; i < 4; ++i) ((int32_t *)e->data)[i] = -i;
    struct ggml_tensor *list[5] = {a, b, c, d, e};
    for (int i = 0; i < 5; ++i) {
        gguf_add_tensor(ctx, list[i]);
        gguf_set_tensor_data(ctx, ggml_get_name(list[i]), list[i]->data);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/golden.gguf", out_dir);
    if (!gguf_write_to_file(ctx, path, false)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    ggml_free(g);
    gguf_free(ctx);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s OUT_DIR SCRATCH_DIR\n", argv[0]);
        return 64;
    }
    const char *out_dir = argv[1], *scratch = argv[2];
    rng_state = 20260101;

    static float input[ROWS * COLS];
    for (int r = 0; r < ROWS; ++r) {
        if (r < EDGE_ROWS) fill_edge_row(r, input + r * COLS);
        else fill_random_row(r, input + r * COLS);
    }
    static float imatrix[COLS];
    for (int j = 0; j < COLS; ++j) imatrix[j] = (float)(0.1 * exp(gaussian()));
    imatrix[5] = 0.0f;  // a dead channel
    imatrix[100] = 0.0f;
    imatrix[200] = 1e4f;  // a dominant one
    write_file(out_dir, "input.f32", input, sizeof input);
    write_file(out_dir, "imatrix.f32", imatrix, sizeof imatrix);

    static uint8_t out[ROWS * COLS * 4];
    static float dequant[ROWS * COLS];
    char name[256];
    for (size_t t = 0; t < sizeof types / sizeof types[0]; ++t) {
        const struct golden_type *gt = &types[t];
        const size_t bytes = ggml_row_size(gt->type, COLS) * ROWS;
        size_t n = ggml_quantize_chunk(gt->type, input, out, 0, ROWS, COLS, NULL);
        if (n != bytes) { fprintf(stderr, "%s: size %zu != %zu\n", gt->name, n, bytes); return 1; }
        snprintf(name, sizeof name, "%s.bin", gt->name);
        write_file(out_dir, name, out, bytes);
        ggml_get_type_traits(gt->type)->to_float(out, dequant, ROWS * COLS);
        snprintf(name, sizeof name, "%s.dequant.f32", gt->name);
        write_file(scratch, name, dequant, sizeof dequant);
        if (gt->uses_imatrix) {
            // llama-quantize passes one importance vector of n_per_row values for every row of a 2-D tensor.
            n = ggml_quantize_chunk(gt->type, input, out, 0, ROWS, COLS, imatrix);
            snprintf(name, sizeof name, "%s-imatrix.bin", gt->name);
            write_file(out_dir, name, out, n);
        }
    }
    // quantize_row_iq4_nl_ref differs from the quantize_iq4_nl path (no scale search); it reads stale indices
    // for an all-zero block, so only the random rows (no such block) are recorded.
    const size_t iq4_row = ggml_row_size(GGML_TYPE_IQ4_NL, COLS);
    for (int r = EDGE_ROWS; r < ROWS; ++r) {
        quantize_row_iq4_nl_ref(input + r * COLS, (block_iq4_nl *)(out + (r - EDGE_ROWS) * iq4_row), COLS);
    }
    write_file(out_dir, "IQ4_NL-ref.bin", out, (ROWS - EDGE_ROWS) * iq4_row);

    write_golden_gguf(out_dir);
    return 0;
}
