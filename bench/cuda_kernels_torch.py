#!/usr/bin/env python3
"""PyTorch's kernels for the ops `tessel bench kernels` times, at the same shapes.

Reads the shapes line of `tessel bench kernels` (JSON) on stdin and prints one JSON line per op
in the same form, timed the same way: 3 warm-up calls, then the mean of `iters` back-to-back
calls between two CUDA events. The peers: F.layer_norm / an RMSNorm in eager ops, F.linear
(cuBLAS), scaled_dot_product_attention (FlashAttention-2 or cuDNN, PyTorch's pick), F.gelu
(tanh) / silu·up, linear + cross_entropy (full logits: PyTorch has no fused classifier), and
the fused torch.optim.AdamW.
"""
import json, sys

import torch
import torch.nn.functional as F


def main():
    shapes = json.loads(sys.stdin.readline())
    dtype = torch.bfloat16 if shapes["dtype"] == "bf16" else torch.float32
    if dtype == torch.float32:  # parity arithmetic, as Tessel's fp32 GEMMs (no TF32)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    B, T, C, H, KV, Fw, V, iters = (shapes[k] for k in ("B", "T", "C", "H", "KV", "F", "V", "iters"))
    D, N = C // H, B * T
    es = 2 if dtype == torch.bfloat16 else 4
    dev = "cuda"

    def rnd(*shape, scale=1.0, dt=dtype, grad=False):
        return (torch.randn(*shape, device=dev, dtype=torch.float32) * scale).to(dt).requires_grad_(grad)

    def time_op(fn):
        for _ in range(3):
            fn()
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            fn()
        stop.record()
        stop.synchronize()
        return start.elapsed_time(stop) / iters

    def report(op, ms, flops=0.0, nbytes=0.0):
        row = {"bench": "kernels", "impl": "torch", "dtype": shapes["dtype"], "op": op, "ms": round(ms, 4)}
        if flops:
            row["tflops"] = round(flops / (ms * 1e-3) / 1e12, 2)
        if nbytes:
            row["gbps"] = round(nbytes / (ms * 1e-3) / 1e9, 1)
        print(json.dumps(row), flush=True)

    x = rnd(N, C, grad=True)
    w, b = rnd(C, grad=True), rnd(C, grad=True)
    dy = rnd(N, C)
    if shapes["norm"] == "layernorm":
        norm = lambda: F.layer_norm(x, (C,), w, b, 1e-5)
        name = "layernorm"
    else:
        norm = lambda: x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-5).to(dtype) * w
        name = "rmsnorm"
    report(name + "_forward", time_op(lambda: norm()), nbytes=2 * N * C * es)
    y = norm()
    report(name + "_backward", time_op(lambda: torch.autograd.grad(y, (x, w), dy, retain_graph=True)),
           nbytes=4 * N * C * es)

    QKV = (H + 2 * KV) * D
    ffn_in = 2 * Fw if shapes["activation"] == "swiglu" else Fw
    w_qkv, w_fc = rnd(QKV, C, scale=0.02), rnd(ffn_in, C, scale=0.02, grad=True)
    xi = rnd(N, C, grad=True)
    report("matmul_forward_qkv", time_op(lambda: F.linear(xi, w_qkv)), flops=2.0 * N * C * QKV)
    report("matmul_forward_ffn_in", time_op(lambda: F.linear(xi, w_fc)), flops=2.0 * N * C * ffn_in)
    fc = F.linear(xi, w_fc)
    dfc = rnd(N, ffn_in)
    report("matmul_backward_ffn_in", time_op(lambda: torch.autograd.grad(fc, (xi, w_fc), dfc, retain_graph=True)),
           flops=4.0 * N * C * ffn_in)

    q = rnd(B, H, T, D, grad=True)
    k, v = rnd(B, KV, T, D, grad=True), rnd(B, KV, T, D, grad=True)
    gqa = {"enable_gqa": True} if KV != H else {}
    att_flops = 2.0 * B * H * T * T * D
    sdpa = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, **gqa)
    report("attention_forward", time_op(sdpa), flops=att_flops)
    o = sdpa()
    do = rnd(B, H, T, D)
    report("attention_backward", time_op(lambda: torch.autograd.grad(o, (q, k, v), do, retain_graph=True)),
           flops=2.5 * att_flops)

    pre = rnd(N, ffn_in, grad=True)
    if shapes["activation"] == "swiglu":
        act = lambda: F.silu(pre[:, :Fw]) * pre[:, Fw:]
        report("swiglu_forward", time_op(act), nbytes=3 * N * Fw * es)
        a = act()
        da = rnd(N, Fw)
        report("swiglu_backward", time_op(lambda: torch.autograd.grad(a, pre, da, retain_graph=True)),
               nbytes=5 * N * Fw * es)
    else:
        act = lambda: F.gelu(pre, approximate="tanh")
        report("gelu_forward", time_op(act), nbytes=2 * N * Fw * es)
        a = act()
        da = rnd(N, Fw)
        report("gelu_backward", time_op(lambda: torch.autograd.grad(a, pre, da, retain_graph=True)),
               nbytes=3 * N * Fw * es)

    head = rnd(V, C, scale=0.02, grad=True)
    targets = torch.zeros(N, dtype=torch.long, device=dev)

    def classifier():
        loss = F.cross_entropy(F.linear(x, head).float(), targets)
        return torch.autograd.grad(loss, (x, head))
    report("classifier_forward_backward", time_op(classifier), flops=6.0 * N * C * V)

    P = 4 * C * C + 2 * C * Fw
    param = torch.nn.Parameter(torch.randn(P, device=dev))
    param.grad = torch.randn(P, device=dev)
    opt = torch.optim.AdamW([param], lr=1e-4, fused=True)
    report("adamw", time_op(opt.step), nbytes=P * 28.0)


if __name__ == "__main__":
    main()
