"""Per-sample gradient algebra for ``nn.Linear``, ``nn.Embedding`` and ``nn.LayerNorm``, without per-sample gradients.

For one batch, a forward pass records each layer's input (Linear: activations
``a``; Embedding: token ids) and its output; one backward pass of ``J = Σ_i ℓ_i``
*with respect to the layer outputs* (not the parameters: no weight gradient is ever
formed) gives every sample's output gradients ``g``. Because samples do not interact in
the forward pass, ``∂J/∂out_i = ∂ℓ_i/∂out_i``, and every per-sample weight gradient is a
sum of outer products over the token axis ``t`` (T = 1 for a plain 2-D input):

* Linear ``W[out, in]``: ``∇_W ℓ_i = Σ_t g_it a_itᵀ``, ``∇_b ℓ_i = Σ_t g_it``;
* Embedding ``E[V, D]``: ``∇_E ℓ_i = Σ_t onehot(id_it) g_itᵀ`` (positions holding
  ``padding_idx`` get no gradient);
* LayerNorm ``y = x̂ ⊙ w + b`` with ``x̂ = layer_norm(x)`` without affine (the module's
  eps): ``∇_w ℓ_i = Σ_t g_it ⊙ x̂_it``, ``∇_b ℓ_i = Σ_t g_it``. These are vectors of the
  normalised size, so they are simply formed per sample (B × D, no larger than an
  activation) and kept exact in projections, like biases.

From these factors (Li et al. 2022 "ghost clipping"; Bu et al. 2023 "book-keeping")

* squared norms: Linear with T = 1: ``‖a_i‖²‖g_i‖²`` (+ ``‖g_i‖²`` for the bias);
  with T > 1: ``Σ_{t,t'} ⟨a_t,a_t'⟩⟨g_t,g_t'⟩`` or, when ``T² > in·out``, the
  materialised ``‖Σ_t g_t a_tᵀ‖²`` (whichever is cheaper); Embedding:
  ``Σ_{t,t'} [id_t = id_t'] ⟨g_t, g_t'⟩``;
* inner products with a fixed parameter-shaped vector ``G`` (TracIn): Linear
  ``Σ_t g_tᵀ G_W a_t + Σ_t g_t·G_b``, Embedding ``Σ_t g_t·G_E[id_t]``;
* Kronecker-structured random projections ``Σ_t (P_r u_t) ⊗ (P_c v_t)`` (TracIn for
  large models; the structure of LoGra, Choe et al. 2024).

A layer called several times in one forward pass (weight sharing) is handled exactly by
concatenating its calls along the token axis. Models with parameters in other layer
types are refused with ``NotImplementedError`` rather than silently mis-scored.
Assumption: dimension 0 of every layer input is the sample axis, and samples do not
interact in the forward pass (no batch norm, no in-batch negatives).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

SUPPORTED = (nn.Linear, nn.Embedding, nn.LayerNorm)


class LayerRecord:
    """One Linear/Embedding/LayerNorm layer's inputs, outputs and output gradients for one batch."""

    __slots__ = ("name", "module", "inputs", "outputs", "grads")

    def __init__(self, name: str, module: nn.Module):
        self.name = name
        self.module = module
        self.inputs: list[torch.Tensor] = []
        self.outputs: list[torch.Tensor] = []
        self.grads: list[torch.Tensor] = []

    def reset(self) -> None:
        self.inputs, self.outputs, self.grads = [], [], []

    @property
    def is_embedding(self) -> bool:
        return isinstance(self.module, nn.Embedding)

    @property
    def is_layer_norm(self) -> bool:
        return isinstance(self.module, nn.LayerNorm)

    def factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(a [B,T,in] or ids [B,T] or x̂ [B,T,D], g [B,T,out]); padding positions of an Embedding get g = 0."""
        if not self.grads:
            raise RuntimeError(f"layer {self.name} has no gradients; call GhostCapture.backward first")
        b = self.grads[0].shape[0]
        if self.is_layer_norm:
            return self._normalised_inputs(b), _cat([x.reshape(b, -1, self.module.weight.numel()) for x in self.grads])
        g = _cat([x.reshape(b, -1, x.shape[-1]) for x in self.grads])
        if self.is_embedding:
            ids = _cat([x.reshape(b, -1) for x in self.inputs])
            pad = self.module.padding_idx
            if pad is not None:
                g = g * (ids != pad).unsqueeze(-1).to(g.dtype)
            return ids, g
        a = _cat([x.reshape(b, -1, x.shape[-1]) for x in self.inputs])
        return a, g

    def _normalised_inputs(self, b: int) -> torch.Tensor:
        """[B,T,D] x̂ = layer_norm(x) without the affine part, recomputed from the recorded inputs."""
        shape, eps = self.module.normalized_shape, self.module.eps
        d = self.module.weight.numel()
        dtype = self.grads[0].dtype
        return _cat([F.layer_norm(x, shape, eps=eps).reshape(b, -1, d).to(dtype) for x in self.inputs])

    def vector_params(self) -> list[str]:
        """LayerNorm only: its trainable parameters, "weight" before "bias"."""
        return [
            n
            for n in ("weight", "bias")
            if getattr(self.module, n) is not None and getattr(self.module, n).requires_grad
        ]

    def vector_grads(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """LayerNorm only: ([B,D] ∇_w ℓ_i, [B,D] ∇_b ℓ_i), None for a parameter that is absent or frozen."""
        x_hat, g = self.factors()
        trainable = self.vector_params()
        gw = (g * x_hat).sum(1) if "weight" in trainable else None
        gb = g.sum(1) if "bias" in trainable else None
        return gw, gb

    # ---- per-sample quantities ------------------------------------------------
    def sq_norms(self) -> torch.Tensor:
        """[B] squared norm of each sample's gradient w.r.t. this layer's parameters."""
        if self.is_embedding:
            return self._embedding_sq_norms()
        if self.is_layer_norm:
            return _sum([v.pow(2).sum(1) for v in self.vector_grads() if v is not None])
        x, g = self.factors()
        t = g.shape[1]
        wants_w = self.module.weight.requires_grad
        bias = self.module.bias is not None and self.module.bias.requires_grad
        if t == 1:
            g2 = torch.linalg.vector_norm(g[:, 0], dim=-1).square()
            out = torch.linalg.vector_norm(x[:, 0], dim=-1).square() * g2 if wants_w else torch.zeros_like(g2)
            return out + g2 if bias else out
        out = torch.zeros(g.shape[0], dtype=g.dtype, device=g.device)
        if wants_w:
            d_in, d_out = x.shape[-1], g.shape[-1]
            if t * t <= d_in * d_out:
                out = (torch.bmm(x, x.transpose(1, 2)) * torch.bmm(g, g.transpose(1, 2))).sum((1, 2))
            else:
                out = torch.bmm(g.transpose(1, 2), x).pow(2).sum((1, 2))
        if bias:
            out = out + g.sum(1).pow(2).sum(-1)
        return out

    def _embedding_sq_norms(self) -> torch.Tensor:
        """Σ_{t,t'} [id_t = id_t' ≠ pad] ⟨g_t, g_t'⟩ = Σ_t ‖g_t‖² + the off-diagonal same-id pairs.

        The diagonal needs no T×T work; the pair term is computed only for the rows that
        repeat a (non-padding) token id, found with a per-row sort.
        """
        b = self.grads[0].shape[0]
        ids = _cat([x.reshape(b, -1) for x in self.inputs])
        g = _cat([x.reshape(b, -1, x.shape[-1]) for x in self.grads])
        pad = self.module.padding_idx
        sq_tok = torch.linalg.vector_norm(g, dim=-1).square()  # fused, no [B,T,D] temporary
        valid = ids != pad if pad is not None else None
        out = (sq_tok * valid).sum(1) if valid is not None else sq_tok.sum(1)
        if ids.shape[1] == 1:
            return out
        small = self.module.num_embeddings < 2**31
        srt = (ids.to(torch.int32) if small else ids).sort(1).values
        dup = srt[:, 1:] == srt[:, :-1]
        if pad is not None:
            dup &= srt[:, 1:] != pad
        rows = dup.any(1).nonzero().squeeze(1)
        if rows.numel():
            ii, gi = ids[rows], g[rows]
            eq = ii.unsqueeze(2) == ii.unsqueeze(1)
            if valid is not None:
                vi = valid[rows]
                eq &= vi.unsqueeze(1) & vi.unsqueeze(2)
            eq.diagonal(dim1=1, dim2=2).fill_(False)
            out = out.index_add(0, rows, (torch.bmm(gi, gi.transpose(1, 2)) * eq).sum((1, 2)))
        return out

    def key(self, param: str) -> str:
        """The ``model.named_parameters()`` name of this layer's ``weight`` / ``bias``."""
        return f"{self.name}.{param}" if self.name else param

    def dots(self, grads: dict[str, torch.Tensor]) -> torch.Tensor:
        """[B] ⟨∇ℓ_i, G⟩ restricted to this layer, for a parameter-shaped vector ``G``
        given as ``{parameter name: tensor}`` (names as in ``model.named_parameters()``)."""
        if self.is_layer_norm:
            return self._vector_dots(grads)
        x, g = self.factors()
        out = torch.zeros(g.shape[0], dtype=g.dtype, device=g.device)
        gw = grads.get(self.key("weight"))
        if self.is_embedding:
            if gw is not None:
                out = (g * gw[x]).sum((1, 2))
            return out
        if gw is not None:
            out = (g * (x @ gw.t())).sum((1, 2))
        gb = grads.get(self.key("bias")) if self.module.bias is not None else None
        if gb is not None:
            out = out + g.sum(1) @ gb
        return out

    def _vector_dots(self, grads: dict[str, torch.Tensor]) -> torch.Tensor:
        gw, gb = self.vector_grads()
        out = torch.zeros(self.grads[0].shape[0], dtype=self.grads[0].dtype, device=self.grads[0].device)
        for mine, name in ((gw, "weight"), (gb, "bias")):
            other = grads.get(self.key(name))
            if mine is not None and other is not None:
                out = out + mine @ other.reshape(-1).to(mine.dtype)
        return out

    def project(self, proj: LayerProjection) -> torch.Tensor:
        """[B, k] the projected per-sample gradient of this layer (bias and LayerNorm kept exact)."""
        if self.is_layer_norm:
            return torch.cat([v for v in self.vector_grads() if v is not None], 1)
        x, g = self.factors()
        if self.is_embedding:
            u = proj.rows.t()[x]  # [B, T, k1]: columns of P_rows picked by token id
            v = g @ proj.cols.t()  # [B, T, k2]
        else:
            u = g @ proj.rows.t()
            v = x @ proj.cols.t()
        parts = [torch.bmm(u.transpose(1, 2), v).flatten(1)]
        if not self.is_embedding and self.module.bias is not None:
            parts.append(g.sum(1))
        return torch.cat(parts, 1)


class LayerProjection:
    """A Kronecker-structured Gaussian projection of one weight's gradient: ``P_rows ⊗ P_cols``.

    Entries are N(0, 1/k) so that ``E[Pᵀ P] = I``: projected inner products are unbiased
    estimates of the exact ones (Johnson–Lindenstrauss). With ``exact_if_small`` a weight
    of at most ``dim`` entries is not projected (identity factors): nothing is gained by
    a random map to as many dimensions as the weight has. A LayerNorm (1-D weight) has no
    projection: its gradient is kept exact.
    """

    def __init__(
        self,
        weight_shape: tuple[int, ...],
        dim: int,
        generator: torch.Generator,
        device,
        dtype,
        exact_if_small: bool = False,
    ):
        self.rows: torch.Tensor | None = None
        self.cols: torch.Tensor | None = None
        if len(weight_shape) != 2:  # LayerNorm: exact, and no random numbers drawn
            return
        n_rows, n_cols = weight_shape  # Linear [out, in]; Embedding [V, D]
        if exact_if_small and n_rows * n_cols <= dim:
            self.rows = torch.eye(n_rows, device=device, dtype=dtype)
            self.cols = torch.eye(n_cols, device=device, dtype=dtype)
            return
        k1 = min(n_rows, max(1, int(round(math.sqrt(dim)))))
        k2 = min(n_cols, max(1, math.ceil(dim / k1)))
        self.rows = (torch.randn(k1, n_rows, generator=generator) / math.sqrt(k1)).to(device, dtype)
        self.cols = (torch.randn(k2, n_cols, generator=generator) / math.sqrt(k2)).to(device, dtype)

    def width(self, rec: LayerRecord) -> int:
        """The number of columns ``rec.project(self)`` returns."""
        if rec.is_layer_norm:
            return sum(getattr(rec.module, n).numel() for n in rec.vector_params())
        bias = rec.module.bias if not rec.is_embedding else None
        return self.rows.shape[0] * self.cols.shape[0] + (bias.numel() if bias is not None else 0)

    def project_grad(self, rec: LayerRecord, grads: dict[str, torch.Tensor]) -> torch.Tensor:
        """[k] the projection of a parameter-shaped vector ``{name: tensor}`` (layout of ``LayerRecord.project``)."""
        if rec.is_layer_norm:
            return torch.cat([grads[rec.key(n)].reshape(-1) for n in rec.vector_params()])
        parts = [(self.rows @ grads[rec.key("weight")] @ self.cols.t()).flatten()]
        if not rec.is_embedding and rec.module.bias is not None:
            parts.append(grads[rec.key("bias")])
        return torch.cat(parts)


class GhostCapture:
    """Forward hooks on every trainable Linear/Embedding/LayerNorm layer of ``model``.

    Use as a context manager around the forward pass, then call :meth:`backward` with the
    summed per-sample losses. ``types`` restricts which layers are recorded (e.g. only
    Embeddings for input gradients).
    """

    def __init__(self, model: nn.Module, types: tuple[type, ...] = SUPPORTED):
        self.model = model
        self.layers: list[LayerRecord] = []
        for name, module in model.named_modules():
            own = [p for p in module.parameters(recurse=False) if p.requires_grad]
            if not own:
                continue
            if not isinstance(module, SUPPORTED):
                raise NotImplementedError(
                    f"per-sample gradients of {type(module).__name__} ({name!r}) are not implemented; "
                    "only nn.Linear, nn.Embedding and nn.LayerNorm carry parameters in supported models"
                )
            if isinstance(module, nn.Embedding) and module.scale_grad_by_freq:
                raise NotImplementedError(f"{name!r}: Embedding(scale_grad_by_freq=True) has no per-sample gradient")
            if isinstance(module, types):
                self.layers.append(LayerRecord(name, module))
        self._handles: list = []

    def __enter__(self) -> GhostCapture:
        for layer in self.layers:
            layer.reset()
            self._handles.append(layer.module.register_forward_hook(partial(_record, layer)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def backward(self, total: torch.Tensor, extra: Sequence[torch.Tensor] = ()) -> list[torch.Tensor]:
        """Fill each layer's output gradients of ``total``; return the gradients w.r.t. ``extra``."""
        outs = [o for layer in self.layers for o in layer.outputs]
        targets = outs + list(extra)
        grads = torch.autograd.grad(total, targets, allow_unused=True) if targets else ()
        grads = [torch.zeros_like(t) if g is None else g for g, t in zip(grads, targets)]
        k = 0
        for layer in self.layers:
            n = len(layer.outputs)
            layer.grads = grads[k : k + n]
            k += n
        return grads[k:]

    def backward_sq_norms(self, total: torch.Tensor) -> torch.Tensor:
        """Backward of ``total`` and the [B] per-sample squared gradient norms over all layers.

        A layer called once in the forward pass gets its norms computed inside the
        backward pass, by a tensor hook, as soon as its output gradient exists (while it
        is still in cache); layers called several times are summed afterwards with their
        cross terms.
        """
        parts: list[torch.Tensor] = []
        handles = [
            layer.outputs[0].register_hook(partial(_norm_hook, layer, parts))
            for layer in self.layers
            if len(layer.outputs) == 1
        ]
        try:
            self.backward(total)
        finally:
            for handle in handles:
                handle.remove()
        parts += [layer.sq_norms() for layer in self.layers if len(layer.outputs) > 1]
        return _sum(parts)

    # ---- whole-model sums ---------------------------------------------------------
    def sq_norms(self) -> torch.Tensor:
        return _sum([layer.sq_norms() for layer in self.layers if layer.outputs])

    def dots(self, grads: dict[str, torch.Tensor]) -> torch.Tensor:
        return _sum([layer.dots(grads) for layer in self.layers if layer.outputs])

    def release(self) -> None:
        for layer in self.layers:
            layer.reset()


def _record(layer: LayerRecord, module: nn.Module, args: tuple, output: torch.Tensor) -> None:
    layer.inputs.append(args[0].detach())
    layer.outputs.append(output)


def _norm_hook(layer: LayerRecord, parts: list, grad: torch.Tensor) -> None:
    layer.grads = [grad]
    parts.append(layer.sq_norms())
    layer.grads = []


def _cat(parts: list[torch.Tensor]) -> torch.Tensor:
    return parts[0] if len(parts) == 1 else torch.cat(parts, 1)


def _sum(parts: list[torch.Tensor]) -> torch.Tensor:
    out = parts[0]
    for p in parts[1:]:
        out = out + p
    return out
