"""Our U-Net DCA block computes what the DCA authors' code computes, given the same weights.

Checked against: the authors' PyTorch code, github.com/gorkemcanates/Dual-Cross-Attention (MIT licence), commit
9b7d1bf5d7117a7a0f06110e82c5ff8bb5893b61, files `model/utils/dca.py` (`DCA`, `CCSABlock`, `ChannelAttention`,
`SpatialAttention`), `model/utils/dca_utils.py` (`depthwise_projection`, `PoolEmbedding`, `UpsampleConv`,
`ScaleDotProduct`), `model/utils/main_blocks.py` (`conv_block`, `depthwise_conv_block`) and `model/unet.py` (which
builds `DCA(n=1, features=[32, 64, 128, 256], strides=[p, p/2, p/4, p/8], patch=size/p, channel_head=[1]*4,
spatial_head=[4]*4)` at k = 0.5). Their code is neither vendored nor imported: this file holds

* `authors_layout`: a seeded random float64 state dict laid out as their `DCA(...).state_dict()` would be (their
  parameter and buffer names and shapes, BatchNorm buffers included);
* `to_ours` / `to_theirs`: the mapping between that layout and our `dcat.unet.DCA(widths, heads=4)`'s state dict
  (a bijection on tensor elements: our scale-shared depthwise q/o (channel) and v/o (spatial) projections are the
  authors' per-scale ones concatenated along the channels);
* `authors_forward`: an independent functional re-implementation of their forward pass (only `torch` and
  `torch.nn.functional`, no `dcat` code), following their reshapes and permutes, which decide the attended axis.

The tests: our block (eval mode, float64) equals the re-implementation to 1e-10 (max absolute difference) on random
inputs at two sizes; the re-implementation with one detail changed (LayerNorm eps 1e-5, `align_corners=False`, 2
spatial or 2 channel heads) does not, so the comparison can fail; the parameter count is theirs (110,560); and the
authors' layout loads with `strict=True` and round-trips.
"""
import math

import pytest
import torch
import torch.nn.functional as F

WIDTHS = (32, 64, 128, 256)          # their features at k = 0.5
CHANNEL_HEADS, SPATIAL_HEADS = 1, 4  # their channel_head=[1]*4, spatial_head=[4]*4
LN_EPS, BN_EPS = 1e-6, 1e-5          # their nn.LayerNorm(eps=1e-6); nn.BatchNorm2d's default eps
TOL = 1e-10
BN_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")

# ---------------------------------------------------------------------------------------------------------------
# The authors' state-dict layout

def authors_layout(widths=WIDTHS, n=1, seed=0) -> dict[str, torch.Tensor]:
    """Seeded random float64 tensors under the names and shapes of the authors' `DCA(features=widths, n=n)`.

    `depthwise_projection` → `depthwise_conv_block` (no pointwise conv, no norm): `<p>.proj.depthwise.{weight (c,1,1,1),
    bias (c)}`; `UpsampleConv(conv='conv')` → `conv_block` (no norm): `upconvs.i.conv.conv.{weight (c,c,1,1), bias}`;
    `bn_relu.i` = `Sequential(BatchNorm2d, ReLU)`. Order: registration order (`patch_avg` and `nn.Upsample` hold none)."""
    g = torch.Generator().manual_seed(seed)
    rnd = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
    C = sum(widths)
    sd: dict[str, torch.Tensor] = {}

    def dw(p, c):
        sd[f"{p}.proj.depthwise.weight"] = rnd(c, 1, 1, 1)
        sd[f"{p}.proj.depthwise.bias"] = 0.2 * rnd(c)

    def ln(p, c):  # weights far from ones, so the affine part counts
        sd[f"{p}.weight"] = 1 + 0.5 * rnd(c)
        sd[f"{p}.bias"] = 0.2 * rnd(c)

    for i, c in enumerate(widths): dw(f"avg_map.{i}", c)
    for b in range(n):
        a = f"attention.{b}"
        for i, c in enumerate(widths): ln(f"{a}.channel_norm.{i}", c)
        for i, c in enumerate(widths):   # ChannelAttention(in_features=ΣC, out_features=c)
            for name, cc in (("q_map", c), ("k_map", C), ("v_map", C), ("projection", c)): dw(f"{a}.c_attention.{i}.{name}", cc)
        for i, c in enumerate(widths): ln(f"{a}.spatial_norm.{i}", c)
        for i, c in enumerate(widths):   # SpatialAttention(in_features=ΣC, out_features=c)
            for name, cc in (("q_map", C), ("k_map", C), ("v_map", c), ("projection", c)): dw(f"{a}.s_attention.{i}.{name}", cc)
    for i, c in enumerate(widths):
        sd[f"upconvs.{i}.conv.conv.weight"] = rnd(c, c, 1, 1) / math.sqrt(c)
        sd[f"upconvs.{i}.conv.conv.bias"] = 0.2 * rnd(c)
    for i, c in enumerate(widths):
        p = f"bn_relu.{i}.0"
        sd[f"{p}.weight"] = 1 + 0.3 * rnd(c)
        sd[f"{p}.bias"] = 0.2 * rnd(c)
        sd[f"{p}.running_mean"] = 0.3 * rnd(c)
        sd[f"{p}.running_var"] = 0.5 + torch.rand(c, generator=g, dtype=torch.float64)   # positive
        sd[f"{p}.num_batches_tracked"] = torch.tensor(17 + i, dtype=torch.long)
    return sd

def n_param_elements(sd: dict[str, torch.Tensor]) -> int:
    "Elements of the parameters in a state dict (BatchNorm buffers excluded)."
    return sum(v.numel() for k, v in sd.items() if k.rsplit(".", 1)[-1] not in BN_BUFFERS)

# ---------------------------------------------------------------------------------------------------------------
# The mapping between their names and ours

def key_map(widths=WIDTHS, n=1) -> dict[str, list[str]]:
    "Our key → the authors' keys whose tensors, concatenated along dim 0 in this order, make it."
    m: dict[str, list[str]] = {}
    s = len(widths)
    dwk = lambda p, t: f"{p}.proj.depthwise.{t}"
    for t in ("weight", "bias"):
        for i in range(s): m[f"embed.{i}.conv.{t}"] = [dwk(f"avg_map.{i}", t)]
        for b in range(n):
            a, ca, sa = f"attention.{b}", f"blocks.{b}.0", f"blocks.{b}.1"
            for i in range(s):
                m[f"{ca}.norms.{i}.{t}"] = [f"{a}.channel_norm.{i}.{t}"]
                m[f"{sa}.norms.{i}.{t}"] = [f"{a}.spatial_norm.{i}.{t}"]
                m[f"{ca}.k.{i}.conv.{t}"] = [dwk(f"{a}.c_attention.{i}.k_map", t)]
                m[f"{ca}.v.{i}.conv.{t}"] = [dwk(f"{a}.c_attention.{i}.v_map", t)]
                m[f"{sa}.q.{i}.conv.{t}"] = [dwk(f"{a}.s_attention.{i}.q_map", t)]
                m[f"{sa}.k.{i}.conv.{t}"] = [dwk(f"{a}.s_attention.{i}.k_map", t)]
            m[f"{ca}.q.conv.{t}"] = [dwk(f"{a}.c_attention.{i}.q_map", t) for i in range(s)]
            m[f"{ca}.o.conv.{t}"] = [dwk(f"{a}.c_attention.{i}.projection", t) for i in range(s)]
            m[f"{sa}.v.conv.{t}"] = [dwk(f"{a}.s_attention.{i}.v_map", t) for i in range(s)]
            m[f"{sa}.o.conv.{t}"] = [dwk(f"{a}.s_attention.{i}.projection", t) for i in range(s)]
        for i in range(s): m[f"out.{i}.{t}"] = [f"upconvs.{i}.conv.conv.{t}"]
    for i in range(s):
        for t in ("weight", "bias") + BN_BUFFERS: m[f"norm.{i}.0.{t}"] = [f"bn_relu.{i}.0.{t}"]
    return m

def to_ours(theirs: dict[str, torch.Tensor], widths=WIDTHS, n=1) -> dict[str, torch.Tensor]:
    return {ok: theirs[tks[0]].clone() if len(tks) == 1 else torch.cat([theirs[k] for k in tks], 0)
            for ok, tks in key_map(widths, n).items()}

def to_theirs(ours: dict[str, torch.Tensor], widths=WIDTHS, n=1) -> dict[str, torch.Tensor]:
    out = {}
    for ok, tks in key_map(widths, n).items():
        parts = [ours[ok]] if len(tks) == 1 else ours[ok].split(list(widths), 0)
        assert len(parts) == len(tks), ok
        out.update({k: p.clone() for k, p in zip(tks, parts)})
    return out

# ---------------------------------------------------------------------------------------------------------------
# The authors' forward pass, re-implemented functionally on their layout (no dcat code)

def _seq(x):
    "einops 'B C H W -> B (H W) C'."
    B, C, H, W = x.shape
    return x.permute(0, 2, 3, 1).reshape(B, H * W, C)

def _grid(t, H):
    "einops 'B (H W) C -> B C H W' with H given."
    B, N, C = t.shape
    return t.reshape(B, H, N // H, C).permute(0, 3, 1, 2)

def _dwproj(sd, p, t):
    "depthwise_projection: tokens onto a P×P grid, P = int(sqrt(N)); grouped 1×1 conv; back to tokens."
    P = int(t.shape[1] ** 0.5)
    x = _grid(t, P)
    x = F.conv2d(x, sd[f"{p}.proj.depthwise.weight"], sd[f"{p}.proj.depthwise.bias"], groups=x.shape[1])
    return _seq(x)

def _sdp(x1, x2, x3, scale):
    "ScaleDotProduct: softmax((x1 · x2ᵀ) · scale, last axis) · x3, all (b, h, ·, ·)."
    logits = torch.einsum("bhcw,bhwk->bhck", x1, x2.transpose(-2, -1)) * scale
    return torch.einsum("bhcw,bhwk->bhck", logits.softmax(-1), x3)

def _channel_att(sd, p, q, k, v, heads):
    q, k, v = _dwproj(sd, f"{p}.q_map", q), _dwproj(sd, f"{p}.k_map", k), _dwproj(sd, f"{p}.v_map", v)
    b, hw, cq = q.shape
    c = k.shape[2]
    split = lambda z, cz: z.reshape(b, hw, heads, cz // heads).permute(0, 2, 1, 3).transpose(2, 3)  # (b, h, c/h, hw)
    att = _sdp(split(q, cq), split(k, c), split(v, c), c ** -0.5)        # (b, h, cq/h, ΣC) weights: channels attend
    att = att.permute(0, 3, 1, 2).flatten(2)                             # (b, hw, h·cq/h)
    return _dwproj(sd, f"{p}.projection", att)

def _spatial_att(sd, p, q, k, v, heads):
    q, k, v = _dwproj(sd, f"{p}.q_map", q), _dwproj(sd, f"{p}.k_map", k), _dwproj(sd, f"{p}.v_map", v)
    b, hw, c = q.shape
    cv = v.shape[2]
    split = lambda z, cz: z.reshape(b, hw, heads, cz // heads).permute(0, 2, 1, 3)                  # (b, h, hw, c/h)
    att = _sdp(split(q, c), split(k, c), split(v, cv), (c // heads) ** -0.5)  # (b, h, hw, cv/h): positions attend
    return _dwproj(sd, f"{p}.projection", att.transpose(1, 2).flatten(2))

def authors_forward(sd, raw, patch, strides, n=1, channel_heads=CHANNEL_HEADS, spatial_heads=SPATIAL_HEADS,
                    ln_eps=LN_EPS, align_corners=True):
    "The authors' `DCA.forward(raw)` (BatchNorm in eval mode) with the weights `sd` in their layout."
    x = [_seq(F.adaptive_avg_pool2d(r, (patch, patch))) for r in raw]                  # PoolEmbedding
    x = [_dwproj(sd, f"avg_map.{i}", t) for i, t in enumerate(x)]
    for b in range(n):                                                                  # CCSABlock
        a = f"attention.{b}"
        ln = lambda kind, i, t: F.layer_norm(t, t.shape[-1:], sd[f"{a}.{kind}.{i}.weight"], sd[f"{a}.{kind}.{i}.bias"], ln_eps)
        xc = [ln("channel_norm", i, t) for i, t in enumerate(x)]
        cat = torch.cat(xc, 2)
        x = [t + _channel_att(sd, f"{a}.c_attention.{i}", q, cat, cat, channel_heads) for i, (t, q) in enumerate(zip(x, xc))]
        xs = [ln("spatial_norm", i, t) for i, t in enumerate(x)]
        cat = torch.cat(xs, 2)
        x = [t + _spatial_att(sd, f"{a}.s_attention.{i}", cat, cat, v, spatial_heads) for i, (t, v) in enumerate(zip(x, xs))]
    outs = []
    for i, (t, r, s) in enumerate(zip(x, raw, strides)):
        y = F.interpolate(_grid(t, patch), scale_factor=s, mode="bilinear", align_corners=align_corners)   # UpsampleConv.up
        y = F.conv2d(y, sd[f"upconvs.{i}.conv.conv.weight"], sd[f"upconvs.{i}.conv.conv.bias"])           # its 1×1 conv
        y = y + r
        bn = f"bn_relu.{i}.0"
        y = F.batch_norm(y, sd[f"{bn}.running_mean"], sd[f"{bn}.running_var"], sd[f"{bn}.weight"], sd[f"{bn}.bias"],
                         training=False, eps=BN_EPS)
        outs.append(F.relu(y))
    return outs

# ---------------------------------------------------------------------------------------------------------------
# Tests

def ours_loaded(theirs: dict[str, torch.Tensor]):
    from dcat.unet import DCA
    m = DCA(WIDTHS, heads=SPATIAL_HEADS).double()
    m.load_state_dict(to_ours(theirs), strict=True)
    return m.eval()

def inputs(size: int, seed: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, c, size >> i, size >> i, generator=g, dtype=torch.float64) for i, c in enumerate(WIDTHS)]

@pytest.fixture(scope="module", autouse=True)
def one_thread():
    "Tiny float64 work: one intra-op thread is fastest (and spares busy cores); restored afterwards."
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

@pytest.fixture(scope="module")
def theirs():
    return authors_layout()

@pytest.fixture(scope="module")
def ours(theirs):
    return ours_loaded(theirs)

# (input size, their patch = input_size // patch_size, their strides [p, p/2, p/4, p/8] with patch_size p = 8)
SIZES = [(32, 4, (8, 4, 2, 1)), (64, 8, (8, 4, 2, 1))]

@pytest.mark.parametrize("size,patch,strides", SIZES)
def test_ours_equals_the_authors_forward(ours, theirs, size, patch, strides):
    raw = inputs(size)
    with torch.no_grad():
        got, want = ours(raw), authors_forward(theirs, raw, patch, strides)
    assert [tuple(o.shape) for o in got] == [tuple(r.shape) for r in raw] == [tuple(w.shape) for w in want]
    diffs = [(o - w).abs().max().item() for o, w in zip(got, want)]
    assert max(diffs) < TOL, f"max |ours - authors'| per scale: {diffs}"
    assert all((w > 0).any() and w.abs().max() > 0.1 for w in want)   # not a degenerate all-zero comparison

@pytest.mark.parametrize("change", [dict(ln_eps=1e-5), dict(align_corners=False), dict(spatial_heads=2),
                                    dict(channel_heads=2)])
def test_the_comparison_can_fail(ours, theirs, change):
    "A re-implementation that differs in one detail differs from ours well beyond the tolerance."
    raw = inputs(32)
    with torch.no_grad():
        got, want = ours(raw), authors_forward(theirs, raw, 4, (8, 4, 2, 1), **change)
    diff = max((o - w).abs().max().item() for o, w in zip(got, want))
    assert diff > 1e-8, f"{change}: max difference only {diff:.3g}"

def test_parameter_count_is_the_authors(theirs):
    from dcat.unet import DCA
    m = DCA(WIDTHS, heads=SPATIAL_HEADS)
    n_ours = sum(p.numel() for p in m.parameters())
    assert n_ours == 110_560 == n_param_elements(theirs)
    # their layout has, per scale c and ΣC = 480: 17·c + 8·ΣC + c² parameters
    C = sum(WIDTHS)
    assert sum(17 * c + 8 * C + c * c for c in WIDTHS) == 110_560

def test_layout_loads_strictly_and_round_trips(theirs):
    from dcat.unet import DCA
    fresh = DCA(WIDTHS, heads=SPATIAL_HEADS).double()
    km = key_map()
    # the mapping is a bijection of keys (every key on both sides used exactly once) and of tensor elements
    their_keys = [k for ks in km.values() for k in ks]
    assert len(their_keys) == len(set(their_keys)) and set(their_keys) == set(theirs)
    assert set(km) == set(fresh.state_dict())
    mapped = to_ours(theirs)
    assert {k: tuple(v.shape) for k, v in mapped.items()} == {k: tuple(v.shape) for k, v in fresh.state_dict().items()}
    assert sum(v.numel() for v in mapped.values()) == sum(v.numel() for v in theirs.values())
    res = fresh.load_state_dict(mapped, strict=True)
    assert not res.missing_keys and not res.unexpected_keys
    # what was loaded is exactly what was given, and it maps back to the authors' names and values
    back = to_theirs(fresh.state_dict())
    assert list(back) != [] and set(back) == set(theirs)
    for k, v in theirs.items():
        assert back[k].dtype == v.dtype and torch.equal(back[k], v), k
    # and the other way: our default-initialised state dict survives ours → theirs → ours
    sd = DCA(WIDTHS, heads=SPATIAL_HEADS).state_dict()
    again = to_ours(to_theirs(sd))
    assert list(again) and set(again) == set(sd) and all(torch.equal(again[k], v) for k, v in sd.items())
