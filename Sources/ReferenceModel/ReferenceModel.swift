// Module ReferenceModel: F32 CPU forward passes of the MoE families Smelt validates (DeepSeek-V3's MLA, and the
// grouped-query Qwen3-MoE, GLM-4.5, MiniMax-M2), written to be read top to bottom, plus the SIMD multithreaded
// matmul they run on.
//
// Reading order:
//   FloatTensor.swift        the one tensor type: F32 values + shape
//   WeightProvider.swift     where weights come from (one tensor at a time, any file format behind it)
//   ModelConfiguration.swift every config.json field the forward pass needs
//   Matmul.swift             Y = X · Wᵀ, fast and reference
//   Blocks/*.swift           one free function per block: RMSNorm, RoPE/YaRN, causal attention, MLA, grouped-query
//                            attention, SwiGLU, router, MoE
//   Architectures/*.swift    one decoder layer per model family (DeepSeek-V3, Qwen3-MoE, GLM-4.5, MiniMax-M2, ...)
//   ForwardPass.swift        the model: embed → layers → norm → lm_head, one layer's weights at a time
//
// Letters used in shape comments (as llm.c does):
//   B = batch size, T = tokens per sequence, N = B·T rows, D = hidden size, V = vocabulary size,
//   H = attention heads, E = routed experts, K = experts per token (top-k), I = intermediate size.
// Everything is F32; every matrix is stored [out, in] as in PyTorch's nn.Linear.
