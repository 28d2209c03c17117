// Module ReferenceModel: an F32 CPU forward pass of DeepSeek-V3 (MLA + sigmoid-routed MoE), written to be read
// top to bottom, plus the SIMD multithreaded matmul it runs on.
//
// Reading order:
//   FloatTensor.swift        the one tensor type: F32 values + shape
//   WeightProvider.swift     where weights come from (one tensor at a time, any file format behind it)
//   ModelConfiguration.swift every config.json field the forward pass needs
//   Matmul.swift             Y = X · Wᵀ, fast and reference
//   Blocks/*.swift           one free function per block: embedding, RMSNorm, RoPE/YaRN, MLA, SwiGLU, router, MoE
//   ForwardPass.swift        the model: embed → layers → norm → lm_head, one layer's weights at a time
//
// Letters used in shape comments (as llm.c does):
//   B = batch size, T = tokens per sequence, N = B·T rows, D = hidden size, V = vocabulary size,
//   H = attention heads, E = routed experts, K = experts per token (top-k), I = intermediate size.
// Everything is F32; every matrix is stored [out, in] as in PyTorch's nn.Linear.
