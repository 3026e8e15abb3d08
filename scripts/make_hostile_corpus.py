#!/usr/bin/env python3
"""Writes the hostile-input corpus under tests/hostile/ (docs/limits.md).

Python 3 standard library only; the output is byte-for-byte deterministic,
so running it again and `git diff` shows nothing when the corpus is current.

    python3 scripts/make_hostile_corpus.py [SOURCE_DIR]

What it writes:
  weights/  a minimal valid CLIP (OpenAI names, tiny widths) and damaged copies
  adapter/  a minimal valid RAM adapter for it and damaged copies
  image/    a valid 8x8 PNG, truncated/corrupt JPEG and PNG, decompression bombs
  labels/   label files: invalid UTF-8, empty, duplicates, too long, too many
  vocab/    broken tokenizer vocabularies
  golden/   replacements for a golden set's config.json / classes.json
  dataset/  broken dataset files (official JSON, TSV) and class lists
  config/   broken training configs
  MANIFEST.tsv  one line per damaged file (what tests/cli_hostile.sh runs)

The manifest also lists the hostile PyTorch checkpoints of
tests/fixtures/torch/ (made by scripts/make_torch_fixtures.py, which needs
torch; they are not copied here), by their path relative to tests/hostile.

The valid files (clip_valid.safetensors, clip_small.safetensors,
adapter_valid.safetensors, valid_8x8.png, ok labels) are not in the manifest:
the test script checks that they work, so that every failure in the manifest
is caused by the damage and not by a broken base file.
"""
import gzip
import json
import math
import os
import struct
import sys
import zlib

SRC = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                      os.path.join(os.path.dirname(__file__), ".."))
OUT = os.path.join(SRC, "tests", "hostile")
FIX = os.path.join(SRC, "tests", "fixtures", "images")

MANIFEST = []  # (path, kind, exit, substring, status, description)


def entry(path, kind, exit_code, substring, desc, status="ok"):
    assert "\t" not in substring and "\t" not in desc and "\n" not in desc
    # "-": no substring required (an empty field would vanish in `read`)
    MANIFEST.append((path, kind, str(exit_code), substring or "-", status, desc))


def write(rel, data):
    p = os.path.join(OUT, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(p, "wb") as f:
        f.write(data)
    return rel


# ------------------------------------------------------------ random numbers

class Lcg:
    """Deterministic numbers (64-bit LCG, Knuth's MMIX constants)."""

    def __init__(self, seed):
        self.s = seed & (2**64 - 1)

    def u32(self):
        self.s = (self.s * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
        return self.s >> 32

    def uniform(self, a, b):
        return a + (b - a) * (self.u32() / 2**32)

    def bytes(self, n):
        return bytes(self.u32() & 0xFF for _ in range(n))


# --------------------------------------------------------------- safetensors

DTYPE_SIZE = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
              "U8": 1, "BOOL": 1}


def pack(dtype, values):
    if dtype == "F32":
        return struct.pack("<%df" % len(values), *values)
    if dtype == "F16":
        return struct.pack("<%de" % len(values), *values)
    if dtype == "I64":
        return struct.pack("<%dq" % len(values), *values)
    raise ValueError(dtype)


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


class Tensor:
    def __init__(self, name, shape, values, dtype="F32"):
        self.name, self.shape, self.dtype = name, list(shape), dtype
        self.data = pack(dtype, values)
        assert len(self.data) == numel(shape) * DTYPE_SIZE[dtype]


def renamed(t, name):
    t2 = Tensor.__new__(Tensor)
    t2.name, t2.shape, t2.dtype, t2.data = name, list(t.shape), t.dtype, t.data
    return t2


def header_dict(tensors, metadata=None):
    h = {}
    if metadata:
        h["__metadata__"] = metadata
    off = 0
    for t in tensors:
        h[t.name] = {"dtype": t.dtype, "shape": t.shape, "data_offsets": [off, off + len(t.data)]}
        off += len(t.data)
    return h


def serialise(header_json, data, hlen=None):
    """header_json: the JSON text; padded with spaces to 8 bytes as the
    reference writer does. hlen overrides the stored length."""
    hj = header_json.encode("utf-8")
    hj += b" " * ((8 - len(hj) % 8) % 8)
    n = len(hj) if hlen is None else hlen
    return struct.pack("<Q", n) + hj + data


def safetensors(tensors, metadata=None):
    h = header_dict(tensors, metadata)
    return serialise(json.dumps(h, separators=(",", ":")), b"".join(t.data for t in tensors))


def split(blob):
    n = struct.unpack("<Q", blob[:8])[0]
    return blob[8:8 + n].decode("utf-8"), blob[8 + n:]


# ---------------------------------------------------------------- tiny CLIP

def clip_tensors(vocab, tok_dtype, seed):
    """A tiny CLIP ViT in OpenAI names. Vision: width 8, patch 2, grid 2
    (image 4x4), 1 block, MLP 8. Text: width 2, 1 block, MLP 8, context 77.
    Embedding dim 4. Heads: 2 and 2 (given on the command line)."""
    r = Lcg(seed)
    W, P, G, Mv = 8, 2, 2, 8
    Wt, Mt, L, D = 2, 8, 77, 4
    ts = []

    def rand(name, shape, scale=0.3, dtype="F32"):
        ts.append(Tensor(name, shape, [r.uniform(-scale, scale) for _ in range(numel(shape))], dtype))

    def const(name, shape, v):
        ts.append(Tensor(name, shape, [v] * numel(shape)))

    def block(prefix, w, m):
        const(prefix + "ln_1.weight", [w], 1.0)
        const(prefix + "ln_1.bias", [w], 0.0)
        rand(prefix + "attn.in_proj_weight", [3 * w, w])
        rand(prefix + "attn.in_proj_bias", [3 * w], 0.05)
        rand(prefix + "attn.out_proj.weight", [w, w])
        rand(prefix + "attn.out_proj.bias", [w], 0.05)
        const(prefix + "ln_2.weight", [w], 1.0)
        const(prefix + "ln_2.bias", [w], 0.0)
        rand(prefix + "mlp.c_fc.weight", [m, w])
        rand(prefix + "mlp.c_fc.bias", [m], 0.05)
        rand(prefix + "mlp.c_proj.weight", [w, m])
        rand(prefix + "mlp.c_proj.bias", [w], 0.05)

    rand("visual.conv1.weight", [W, 3, P, P], 0.1)
    rand("visual.class_embedding", [W])
    rand("visual.positional_embedding", [G * G + 1, W], 0.1)
    const("visual.ln_pre.weight", [W], 1.0)
    const("visual.ln_pre.bias", [W], 0.0)
    block("visual.transformer.resblocks.0.", W, Mv)
    const("visual.ln_post.weight", [W], 1.0)
    const("visual.ln_post.bias", [W], 0.0)
    rand("visual.proj", [W, D])
    rand("token_embedding.weight", [vocab, Wt], 0.5, tok_dtype)
    rand("positional_embedding", [L, Wt], 0.1)
    block("transformer.resblocks.0.", Wt, Mt)
    const("ln_final.weight", [Wt], 1.0)
    const("ln_final.bias", [Wt], 0.0)
    rand("text_projection", [Wt, D])
    ts.append(Tensor("logit_scale", [], [math.log(100.0)]))
    return ts


def adapter_tensors(seed):
    """A RAM adapter for the tiny CLIP: visual prompts + TSS on vision block 0,
    deep text prompts on text block 0. Hidden width = embed dim = 4."""
    r = Lcg(seed)
    W, Wt, H, k = 8, 2, 4, 3
    vp = "clip_model.visual.transformer.resblocks.0."
    ca = vp + "conv_adapter."
    ts = []

    def rand(name, shape, scale=0.2):
        ts.append(Tensor(name, shape, [r.uniform(-scale, scale) for _ in range(numel(shape))]))

    def const(name, shape, v):
        ts.append(Tensor(name, shape, [v] * numel(shape)))

    rand("clip_model.transformer.resblocks.0.deep_embeds", [4, Wt])
    rand(vp + "adapt_embeds", [2, W])
    rand(ca + "conv_adapter_layers1.0.weight", [H, W, 1, 1])
    rand(ca + "conv_adapter_layers2.0.weight", [H, W, 3, 3], 0.05)
    for s in (1, 2):
        const(ca + "conv_adapter_layers%d.1.weight" % s, [H], 1.0)
        const(ca + "conv_adapter_layers%d.1.bias" % s, [H], 0.0)
        rand(ca + "conv_adapter_layers%d.1.running_mean" % s, [H], 0.1)
        const(ca + "conv_adapter_layers%d.1.running_var" % s, [H], 1.0)
        ts.append(Tensor(ca + "conv_adapter_layers%d.1.num_batches_tracked" % s, [], [100], "I64"))
    rand(ca + "conv_adapter_layers.weight", [2, 2, k, k])
    rand(ca + "conv_adapter_final.weight", [W, H, 1, 1])
    for n in ("adapter_norm_q1", "adapter_norm_q2", "adapter_norm_kv"):
        const(ca + n + ".weight", [H], 1.0)
        const(ca + n + ".bias", [H], 0.0)
    ts.append(Tensor("temperature", [], [0.0114]))
    ts.append(Tensor("temperature_loc", [], [0.00226]))
    return ts


def with_values(tensors, name, values):
    out = []
    for t in tensors:
        if t.name == name:
            t2 = Tensor(t.name, t.shape, [0.0] * numel(t.shape), t.dtype)
            t2.data = pack(t.dtype, values) if t.dtype != "F32" else struct.pack(
                "<%df" % len(values), *values)
            out.append(t2)
        else:
            out.append(t)
    return out


def damage_safetensors(folder, kind, base, tensors, extra_cmd_note):
    """The same damage for any safetensors file; returns nothing, adds manifest lines."""
    hj, data = split(base)
    n = len(base)
    hlen = struct.unpack("<Q", base[:8])[0]

    def add(name, blob, sub, desc, status="ok"):
        entry(write(folder + "/" + name, blob), kind, 1, sub, desc + extra_cmd_note, status)

    add("empty.safetensors", b"", "too short", "empty file (0 bytes)")
    add("seven_bytes.safetensors", base[:7], "too short", "7 bytes: shorter than the 8-byte length field")
    add("trunc_len_only.safetensors", base[:8], "header length", "only the 8-byte header length, no header")
    add("trunc_mid_header.safetensors", base[:8 + hlen // 2], "header length",
        "truncated in the middle of the JSON header")
    add("trunc_after_header.safetensors", base[:8 + hlen], "data_offsets",
        "truncated right after the header: no tensor data")
    add("trunc_mid_data.safetensors", base[:8 + hlen + len(data) // 2], "data_offsets",
        "truncated in the middle of the tensor data")
    add("trunc_last_byte.safetensors", base[:-1], "data_offsets", "last byte of the data missing")
    add("hlen_past_end.safetensors", struct.pack("<Q", n) + base[8:], "runs past the end",
        "header length larger than the file")
    add("hlen_absurd.safetensors", struct.pack("<Q", 0x7FFFFFFFFFFFFFFF) + base[8:], "limit",
        "header length 2^63-1 (> 100 MiB limit)")
    add("hlen_101mib.safetensors", struct.pack("<Q", 101 << 20) + base[8:], "limit",
        "header length 101 MiB, just above the 100 MiB limit")
    add("hlen_zero.safetensors", struct.pack("<Q", 0) + base[8:], "JSON",
        "header length 0: empty header")
    # bit flips in the JSON header
    b = bytearray(base)
    b[8] ^= 0x01  # '{' -> 'z'
    add("flip_open_brace.safetensors", bytes(b), "JSON", "bit flip turns the opening '{' into 'z'")
    b = bytearray(base)
    pos = 8 + hj.index('"dtype"') + 1
    b[pos] ^= 0x20  # "dtype" -> "Dtype"
    add("flip_dtype_key.safetensors", bytes(b), "dtype", "bit flip in a key: \"dtype\" becomes \"Dtype\"")
    b = bytearray(base)
    pos = 8 + hj.index('"data_offsets":[') + len('"data_offsets":[')
    b[pos] ^= 0x40  # a digit -> a letter: invalid JSON
    add("flip_offset_digit.safetensors", bytes(b), "JSON",
        "bit flip turns an offset digit into a letter (invalid JSON)")
    b = bytearray(base)
    pos = 8 + hj.index('"shape":[') + len('"shape":[')
    b[pos] ^= 0x08  # '4' <-> '<', '8' -> '0'...: changes the shape number or the syntax
    add("flip_shape_digit.safetensors", bytes(b), "",
        "bit flip in the first shape digit (shape and bytes disagree, or invalid JSON)")
    b = bytearray(base)
    b[8 + hlen - 1] = 0x00  # NUL in the header padding
    add("nul_in_header.safetensors", bytes(b), "header",
        "NUL byte in the header's trailing padding")
    b = bytearray(base)
    b[8 + 10] = 0xFF  # invalid UTF-8 inside a tensor name
    add("bad_utf8_header.safetensors", bytes(b), "UTF-8",
        "byte 0xFF inside the first tensor name (invalid UTF-8 in the header)")

    h = json.loads(hj)
    names = [k for k in h if k != "__metadata__"]
    first, second, last = names[0], names[1], names[-1]

    def rebuild(hdict, data_=data, raw=None):
        text = raw if raw is not None else json.dumps(hdict, separators=(",", ":"))
        return serialise(text, data_)

    def copy():
        return json.loads(hj)

    h2 = copy()
    h2[last]["data_offsets"] = [len(data) - 4, len(data) + 4]
    add("offset_past_end.safetensors", rebuild(h2), "outside the data block",
        "last tensor's end offset 4 bytes past the data block")
    h2 = copy()
    h2[first]["data_offsets"] = [2**63, 2**63 + 4]
    add("offset_huge.safetensors", rebuild(h2), "data_offsets", "offsets near 2^63")
    h2 = copy()
    h2[first]["data_offsets"] = [-4, 0]
    add("offset_negative.safetensors", rebuild(h2), "data_offsets", "negative begin offset")
    h2 = copy()
    b0, e0 = h2[first]["data_offsets"]
    h2[first]["data_offsets"] = [e0, b0] if e0 > b0 else [b0 + 4, b0]
    add("offset_begin_after_end.safetensors", rebuild(h2), "begin after end", "begin > end")
    h2 = copy()
    b1, e1 = h2[second]["data_offsets"]
    sz = e1 - b1
    h2[second]["data_offsets"] = [h2[first]["data_offsets"][0], h2[first]["data_offsets"][0] + sz] \
        if h2[first]["data_offsets"][1] - h2[first]["data_offsets"][0] >= sz else [b1 - 4, e1 - 4]
    add("offset_overlap.safetensors", rebuild(h2), "overlap", "two tensors share bytes")
    h2 = copy()
    h2[first]["data_offsets"] = [h2[first]["data_offsets"][0], h2[first]["data_offsets"][1], 0]
    add("offset_three.safetensors", rebuild(h2), "data_offsets", "data_offsets with three numbers")
    h2 = copy()
    h2[first]["data_offsets"] = [0.5, 4]
    add("offset_float.safetensors", rebuild(h2), "data_offsets", "fractional offset")
    h2 = copy()
    h2[first]["dtype"] = "F128"
    add("dtype_unknown.safetensors", rebuild(h2), "unknown dtype", "unknown dtype 'F128'")
    h2 = copy()
    h2[first]["dtype"] = 32
    add("dtype_number.safetensors", rebuild(h2), "dtype", "dtype is a number, not a string")
    h2 = copy()
    h2[first]["dtype"] = "I32"
    add("dtype_int.safetensors", rebuild(h2), "not a floating-point type",
        "a weight stored as I32 (right size, wrong kind)")
    h2 = copy()
    h2[first]["shape"] = [2**40, 2**40]
    add("shape_overflow.safetensors", rebuild(h2), "overflows", "shape [2^40, 2^40]: element count overflows")
    h2 = copy()
    h2[first]["shape"] = [1] * 9
    add("shape_9dims.safetensors", rebuild(h2), "dimensions", "9 dimensions (at most 8)")
    h2 = copy()
    h2[first]["shape"] = [-1]
    add("shape_negative.safetensors", rebuild(h2), "shape", "negative dimension")
    h2 = copy()
    h2[first]["shape"] = "4"
    add("shape_string.safetensors", rebuild(h2), "shape", "shape is a string")
    h2 = copy()
    h2[first] = [1, 2, 3]
    add("entry_array.safetensors", rebuild(h2), "not a JSON object", "tensor entry is an array")
    h2 = copy()
    h2["__metadata__"] = {"k": 5}
    add("metadata_number.safetensors", rebuild(h2), "__metadata__", "__metadata__ value is a number")
    add("header_array.safetensors", rebuild(None, raw="[" + json.dumps(h[first]) + "]"),
        "not a JSON object", "the header is a JSON array")
    add("header_string.safetensors", rebuild(None, raw='"hello"'), "not a JSON object",
        "the header is a JSON string")
    add("header_trailing.safetensors", rebuild(None, raw=hj.rstrip() + '{"x":1}'), "after its JSON",
        "data after the JSON object inside the header")
    # duplicate key: the first entry again, pointing at the same bytes
    raw = hj.rstrip()
    dup = '"%s":%s,' % (first, json.dumps(h[first], separators=(",", ":")))
    add("duplicate_key.safetensors", rebuild(None, raw="{" + dup + raw[1:]), "twice",
        "the first tensor's name appears twice in the header")
    return h, names


# ------------------------------------------------------------------- images

def png_chunk(typ, payload, crc_xor=0):
    return (struct.pack(">I", len(payload)) + typ + payload +
            struct.pack(">I", (zlib.crc32(typ + payload) ^ crc_xor) & 0xFFFFFFFF))


PNG_SIG = b"\x89PNG\r\n\x1a\n"


def png(width, height, rows_raw=None, idat_crc_xor=0, ihdr=None):
    if ihdr is None:
        ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    if rows_raw is None:
        r = Lcg(width * 7919 + height)
        rows_raw = b"".join(b"\x00" + r.bytes(3 * width) for _ in range(height))
    return (PNG_SIG + png_chunk(b"IHDR", ihdr) +
            png_chunk(b"IDAT", zlib.compress(rows_raw, 9), idat_crc_xor) + png_chunk(b"IEND", b""))


def jpeg_segments(data):
    """(marker, start, end) of the segments up to and including SOS."""
    out, i = [], 2
    while i < len(data):
        assert data[i] == 0xFF
        m = data[i + 1]
        ln = struct.unpack(">H", data[i + 2:i + 4])[0]
        out.append((m, i, i + 2 + ln))
        i += 2 + ln
        if m == 0xDA:
            break
    return out


def jpeg_with_size(src, width, height, keep_scan=64):
    """src's headers with SOF width/height replaced, a little scan data, EOI."""
    segs = jpeg_segments(src)
    b = bytearray(src[:segs[-1][2] + keep_scan])
    for m, s, e in segs:
        if m in (0xC0, 0xC1, 0xC2):
            struct.pack_into(">HH", b, s + 5, height, width)
    return bytes(b) + b"\xff\xd9"


# ------------------------------------------------------------------- main

def main():
    # ---- weights
    clip_valid = safetensors(clip_tensors(49408, "F16", 1), {"note": "ramc hostile corpus base"})
    write("weights/clip_valid.safetensors", clip_valid)
    small_ts = clip_tensors(16, "F32", 1)
    clip_small = safetensors(small_ts)
    write("weights/clip_small.safetensors", clip_small)
    note = ""
    h, names = damage_safetensors("weights", "clip", clip_small, small_ts, note)

    def clip_variant(name, ts, sub, desc, status="ok"):
        entry(write("weights/" + name, safetensors(ts)), "clip", 1, sub, desc, status)

    def replaced(ts, name, shape):
        out = []
        for t in ts:
            if t.name == name:
                out.append(Tensor(name, shape, [0.1] * numel(shape), t.dtype))
            else:
                out.append(t)
        return out

    clip_variant("wrong_shape_ln.safetensors",
                 replaced(small_ts, "visual.transformer.resblocks.0.ln_1.weight", [9]),
                 "ln_1.weight", "vision ln_1.weight [9] instead of [8]")
    clip_variant("wrong_shape_proj.safetensors", replaced(small_ts, "text_projection", [2, 5]),
                 "text_projection", "text_projection [2,5] while visual.proj is [8,4]")
    clip_variant("wrong_rank_conv.safetensors", replaced(small_ts, "visual.conv1.weight", [8, 3, 16]),
                 "visual.conv1.weight", "conv1 weight with 3 dimensions")
    clip_variant("pos_not_square.safetensors",
                 replaced(small_ts, "visual.positional_embedding", [6, 8]),
                 "square", "6 vision positions: not 1 + a square number")
    clip_variant("missing_tensor.safetensors",
                 [t for t in small_ts if t.name != "transformer.resblocks.0.mlp.c_proj.bias"],
                 "mlp.c_proj.bias", "text block 0's mlp.c_proj.bias is missing")
    clip_variant("missing_logit_scale.safetensors", [t for t in small_ts if t.name != "logit_scale"],
                 "logit_scale", "logit_scale is missing")
    clip_variant("missing_conv.safetensors", [t for t in small_ts if t.name != "visual.conv1.weight"],
                 "not a CLIP", "no patch embedding: not a CLIP checkpoint")
    gap = []
    for t in small_ts:
        if t.name.startswith("transformer.resblocks.0."):
            gap.append(renamed(t, t.name.replace(".0.", ".1.", 1)))
        else:
            gap.append(t)
    clip_variant("block_gap.safetensors", gap, "block 0 is missing",
                 "text blocks numbered 1 only (block 0 missing)")
    nan_ts = with_values(small_ts, "visual.proj", [0.1] * 31 + [float("nan")])
    clip_variant("nan_weight.safetensors", nan_ts, "NaN", "one NaN in visual.proj")
    inf_ts = with_values(small_ts, "token_embedding.weight", [float("inf")] + [0.1] * 31)
    clip_variant("inf_weight.safetensors", inf_ts, "infinite", "+Inf in token_embedding.weight")
    ninf_ts = with_values(small_ts, "logit_scale", [float("-inf")])
    clip_variant("ninf_logit_scale.safetensors", ninf_ts, "infinite", "logit_scale is -Inf")
    big_ts = with_values(small_ts, "visual.proj", [1e6] + [0.1] * 31)
    clip_variant("fp16_overflow.safetensors", big_ts, "fp16",
                 "1e6 in visual.proj: infinite after the official fp16 rounding")
    clip_variant("logit_scale_100.safetensors", with_values(small_ts, "logit_scale", [100.0]),
                 "not a usable temperature", "logit_scale 100: exp() overflows the temperature")
    # the text tower of clip_small cannot embed the real tokenizer's ids; that
    # is a property of the file, not damage, so it is a case too
    entry("weights/clip_small.safetensors", "clip-vocab", 1, "vocabulary",
          "valid file whose vocabulary (16) cannot hold the CLIP tokenizer's ids "
          "(predict must fail cleanly, naming the weights file)")

    # ---- adapter
    ad_ts = adapter_tensors(2)
    adapter_valid = safetensors(ad_ts)
    write("adapter/adapter_valid.safetensors", adapter_valid)
    damage_safetensors("adapter", "adapter", adapter_valid, ad_ts, "")

    def ad_variant(name, ts, sub, desc, status="ok"):
        entry(write("adapter/" + name, safetensors(ts)), "adapter", 1, sub, desc, status)

    vp = "clip_model.visual.transformer.resblocks.0."
    ad_variant("nan_weight.safetensors",
               with_values(ad_ts, vp + "adapt_embeds", [float("nan")] + [0.0] * 15),
               "NaN", "NaN in adapt_embeds")
    ad_variant("inf_temperature.safetensors", with_values(ad_ts, "temperature", [float("inf")]),
               "NaN or Inf", "temperature is +Inf")
    ad_variant("zero_temperature.safetensors", with_values(ad_ts, "temperature", [0.0]),
               "must be positive", "temperature is 0")
    ad_variant("negative_temperature_loc.safetensors", with_values(ad_ts, "temperature_loc", [-0.002]),
               "must be positive", "temperature_loc is -0.002")
    bn_var = [t.name for t in ad_ts if t.name.endswith("conv_adapter_layers1.1.running_var")][0]
    ad_variant("negative_running_var.safetensors", with_values(ad_ts, bn_var, [-1.0, 1.0, 1.0, 1.0]),
               "variance cannot be negative", "a BatchNorm running_var holds -1")
    ad_variant("missing_temperature.safetensors", [t for t in ad_ts if t.name != "temperature_loc"],
               "temperature_loc", "temperature_loc is missing")
    ad_variant("missing_bn.safetensors",
               [t for t in ad_ts if not t.name.endswith("conv_adapter_layers2.1.running_var")],
               "running_var", "a BatchNorm running_var is missing")
    ad_variant("wrong_shape_prompts.safetensors", replaced(ad_ts, vp + "adapt_embeds", [2, 7]),
               "adapt_embeds", "visual prompts [2,7] while the vision width is 8")
    ad_variant("wrong_hidden.safetensors",
               replaced(ad_ts, vp + "conv_adapter.conv_adapter_layers1.0.weight", [5, 8, 1, 1]),
               "hidden width", "TSS hidden width 5, the CLIP embed dim is 4")
    ad_variant("even_kernel.safetensors",
               replaced(ad_ts, vp + "conv_adapter.conv_adapter_layers.weight", [2, 2, 2, 2]),
               "odd", "gate kernel 2x2 (must be odd)")
    moved = []
    for t in ad_ts:
        moved.append(renamed(t, t.name.replace("visual.transformer.resblocks.0.",
                                               "visual.transformer.resblocks.5.")))
    ad_variant("block_out_of_range.safetensors", moved, "vision block 5",
               "adapts vision block 5 of a 1-block model")
    ad_variant("too_many_text_prompts.safetensors",
               replaced(ad_ts, "clip_model.transformer.resblocks.0.deep_embeds", [76, 2]),
               "context", "76 deep text prompts do not fit a 77-token context")
    ad_variant("bn_count_float.safetensors",
               [Tensor(t.name, [], [0.5]) if t.name.endswith("layers1.1.num_batches_tracked") else t
                for t in ad_ts],
               "integer", "num_batches_tracked stored as F32")
    entry(write("adapter/clip_as_adapter.safetensors", clip_small), "adapter", 1, "",
          "a CLIP checkpoint given as the adapter (no adapter tensors)")

    # ---- images
    write("image/valid_8x8.png", png(8, 8))
    good16 = png(16, 16)
    entry(write("image/empty.png", b""), "image", 1, "", "empty file with a .png name")
    entry(write("image/trunc_signature.png", good16[:5]), "image", 1, "", "first 5 bytes of a PNG")
    entry(write("image/trunc_ihdr.png", good16[:20]), "image", 1, "", "PNG cut inside IHDR")
    entry(write("image/trunc_idat.png", good16[:len(good16) // 2]), "image", 1, "",
          "PNG cut in the middle of IDAT")
    # (a PNG without IEND but with all its image data decodes, as in Pillow: not a case)
    entry(write("image/bad_crc_idat.png", png(16, 16, idat_crc_xor=0x1)), "image", 1, "",
          "PNG whose IDAT CRC is wrong")
    entry(write("image/bad_crc_ihdr.png",
                PNG_SIG + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0), 0x80) +
                good16[33:]), "image", 1, "", "PNG whose IHDR CRC is wrong")
    bad_zlib = bytearray(good16)
    bad_zlib[41 + 20] ^= 0xFF  # inside the deflate stream; CRC recomputed below
    idat_len = struct.unpack(">I", good16[33:37])[0]
    payload = bytes(bad_zlib[41:41 + idat_len])
    entry(write("image/bad_deflate.png", good16[:33] + png_chunk(b"IDAT", payload) + png_chunk(b"IEND", b"")),
          "image", 1, "", "PNG with a corrupt deflate stream (CRC correct)")
    short_rows = zlib.compress(b"\x00" + b"\x11" * 24, 9)
    entry(write("image/short_idat.png",
                PNG_SIG + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)) +
                png_chunk(b"IDAT", short_rows) + png_chunk(b"IEND", b"")), "image", 1, "",
          "8x8 PNG whose IDAT holds one row only")
    entry(write("image/bad_filter.png", png(4, 4, rows_raw=b"".join(b"\x07" + b"\x00" * 12 for _ in range(4)))),
          "image", 1, "", "PNG rows with filter type 7")
    entry(write("image/bad_color_type.png",
                png(4, 4, ihdr=struct.pack(">IIBBBBB", 4, 4, 8, 5, 0, 0, 0))), "image", 1, "",
          "PNG colour type 5 (does not exist)")
    entry(write("image/zero_0x0.png", png(0, 0, rows_raw=b"", ihdr=struct.pack(">IIBBBBB", 0, 0, 8, 2, 0, 0, 0))),
          "image", 1, "", "PNG of 0x0 pixels")
    tiny_idat = b"\x00" * 64
    entry(write("image/bomb_100000.png",
                png(0, 0, rows_raw=tiny_idat, ihdr=struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0))),
          "image", 1, "", "PNG header claims 100000x100000 (decompression bomb)")
    entry(write("image/bomb_30000.png",
                png(0, 0, rows_raw=tiny_idat, ihdr=struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))),
          "image", 1, "", "PNG header claims 30000x30000: each side allowed, 900 Mpixel is not")
    entry(write("image/bomb_wide.png",
                png(0, 0, rows_raw=tiny_idat, ihdr=struct.pack(">IIBBBBB", 2**31 - 1, 1, 8, 2, 0, 0, 0))),
          "image", 1, "", "PNG header claims 2147483647x1")
    # a real, small bomb: 20000x20000 greyscale zeros compress to ~400 KB; too
    # big to commit, so a 1-bit 40000x8000 image of zeros (~40 KB of zlib) instead
    rows = b"".join(b"\x00" + b"\x00" * 5000 for _ in range(8000))
    entry(write("image/bomb_real_1bit.png",
                png(0, 0, rows_raw=rows, ihdr=struct.pack(">IIBBBBB", 40000, 8000, 1, 0, 0, 0, 0))),
          "image", 1, "", "1-bit PNG 40000x8000 with real pixel data (side > 32768)")
    jpg = open(os.path.join(FIX, "camera_grey.jpg"), "rb").read()
    entry(write("image/trunc_header.jpg", jpg[:200]), "image", 1, "", "JPEG cut inside its headers")
    entry(write("image/trunc_soi.jpg", jpg[:2]), "image", 1, "", "JPEG of only the SOI marker")
    segs = jpeg_segments(jpg)
    entry(write("image/trunc_scan.jpg", jpg[:segs[-1][2] + 200]), "image", 1, "",
          "JPEG cut early in the scan data (no EOI)")
    entry(write("image/bomb_60000.jpg", jpeg_with_size(jpg, 60000, 60000)), "image", 1, "",
          "JPEG header claims 60000x60000 (decompression bomb)")
    entry(write("image/bomb_30000.jpg", jpeg_with_size(jpg, 30000, 30000)), "image", 1, "",
          "JPEG header claims 30000x30000: each side allowed, 900 Mpixel is not")
    entry(write("image/zero_height.jpg", jpeg_with_size(jpg, 64, 0)), "image", 1, "",
          "JPEG with height 0 (DNL)")
    b = bytearray(jpg)
    for m, s, e in segs:
        if m == 0xC4:  # a Huffman table: make its counts claim too many codes
            for i in range(s + 5, s + 21):
                b[i] = 0xFF
            break
    entry(write("image/bad_huffman.jpg", bytes(b[:segs[-1][2] + 200]) + b"\xff\xd9"), "image", 1, "",
          "JPEG with an impossible Huffman table")
    # the scan data of the real image, then a proper EOI, under a header that
    # claims 16384x16384: libjpeg only warns and fills the rest with grey
    entry(write("image/scan_short_16k.jpg", jpeg_with_size(jpg, 16384, 16384,
                                                           keep_scan=len(jpg) - 2 - segs[-1][2])),
          "image", 1, "incomplete or corrupt JPEG",
          "JPEG header claims 16384x16384, the scan holds the data of a small image, then EOI")
    text_bomb = (PNG_SIG + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)) +
                 struct.pack(">I", 2**31 - 1) + b"tEXtComment\0hi")
    entry(write("image/text_chunk_2g.png", text_bomb), "image", 1, "claims 2147483647 bytes",
          "PNG whose text chunk claims 2^31-1 bytes in a file of a few dozen (no 2 GB reservation)")
    entry(write("image/garbage.jpg", Lcg(7).bytes(512)), "image", 1, "",
          "512 random bytes with a .jpg name")
    entry(write("image/text.png", "this is not an image\n"), "image", 1, "", "a text file with a .png name")
    entry(write("image/png_named_jpg.jpg", b"\xff\xd8\xff" + Lcg(8).bytes(100)), "image", 1, "",
          "JPEG magic followed by garbage")

    # ---- labels
    write("labels/ok.txt", "cat\ndog\n")
    entry(write("labels/bad_utf8.txt", b"cat\nd\xffg\n"), "labels", 1, "UTF-8",
          "invalid UTF-8 (0xFF) in the second label")
    entry(write("labels/overlong_utf8.txt", b"cat\n\xc0\xafdog\n"), "labels", 1, "UTF-8",
          "overlong UTF-8 encoding of '/'")
    entry(write("labels/surrogate_utf8.txt", b"cat\n\xed\xa0\x80\n"), "labels", 1, "UTF-8",
          "UTF-8-encoded surrogate U+D800")
    entry(write("labels/empty.txt", b""), "labels", 1, "no class names", "empty labels file")
    entry(write("labels/comments_only.txt", "# just a comment\n\n   \n"), "labels", 1, "no class names",
          "only comments and blank lines")
    entry(write("labels/duplicates.txt", "cat\ndog\ncat\n"), "labels", 1, "duplicate",
          "'cat' listed twice")
    entry(write("labels/duplicates_trimmed.txt", "cat\n  cat \t\n"), "labels", 1, "duplicate",
          "'cat' twice once surrounding whitespace is trimmed")
    entry(write("labels/too_long.txt", "cat\n" + "x" * 1025 + "\n"), "labels", 1, "1024",
          "a label of 1025 bytes (limit 1024)")
    entry(write("labels/too_many.txt", "".join("l%04d\n" % i for i in range(4097))), "labels", 1, "4096",
          "4097 labels (limit 4096)")
    entry(write("labels/nul_byte.txt", b"cat\nd\x00g\n"), "labels", 1, "NUL",
          "NUL byte inside a label")
    entry(write("labels/nbsp_only.txt", "cat\n\u00a0\u00a0\ndog\n"), "labels", 1, "white space",
          "a label of only U+00A0 NO-BREAK SPACE")
    entry(write("labels/ideographic_space.txt", "cat\n\u3000\n"), "labels", 1, "white space",
          "a label of only U+3000 IDEOGRAPHIC SPACE")
    entry(write("labels/same_tokens.txt", "Red Star\ncat\nred  star\n"), "labels", 1, "same tokens",
          "'Red Star' and 'red  star' tokenize identically")
    entry(write("labels/label_150_words.txt", "cat\n" + " ".join(["word"] * 150) + "\n"), "labels", 1,
          "would be cut", "a 150-word label: its prompt exceeds the 77-token context")

    # ---- tokenizer vocabulary
    real = open(os.path.join(SRC, "data", "bpe_simple_vocab_16e6.txt.gz"), "rb").read()
    entry(write("vocab/empty.txt.gz", b""), "vocab", 1, "", "empty vocabulary file")
    entry(write("vocab/garbage.txt.gz", b"\x1f\x8b\x08\x00" + Lcg(9).bytes(400)), "vocab", 1, "gzip",
          "gzip magic followed by garbage")
    entry(write("vocab/truncated.txt.gz", real[:3000]), "vocab", 1, "gzip",
          "the real vocabulary's gzip stream cut after 3000 bytes")
    entry(write("vocab/binary.txt.gz", Lcg(10).bytes(300)), "vocab", 1, "",
          "300 random bytes (neither gzip nor text)")
    entry(write("vocab/few_merges.txt", "#version: 0.2\na b\n"), "vocab", 1, "merges",
          "plain text with a single merge")
    small_gz = gzip.compress("#version: 0.2\nt h\n".encode(), mtime=0)
    entry(write("vocab/few_merges.txt.gz", small_gz), "vocab", 1, "merges", "valid gzip, one merge")
    entry(write("vocab/bad_utf8.txt", b"#version: 0.2\n\xff\xfe x\n"), "vocab", 1, "UTF-8",
          "plain text with invalid UTF-8")

    # ---- golden set JSON (replaces config.json / classes.json of a copy of tiny-s0)
    entry(write("golden/config_truncated.json", '{"size": "tiny", "model": {"image": 3'), "golden-config", 1,
          "config.json", "config.json cut in the middle")
    entry(write("golden/config_empty.json", ""), "golden-config", 1, "config.json", "empty config.json")
    entry(write("golden/config_array.json", "[1, 2, 3]\n"), "golden-config", 1, "config.json",
          "config.json is an array")
    entry(write("golden/config_wrong_types.json",
                json.dumps({"size": "tiny", "model": "tiny", "n_seen": "six", "n_unseen": [], "grid": None})),
          "golden-config", 1, "config.json", "config.json with wrong value types")
    entry(write("golden/config_bad_utf8.json", b'{"size": "t\xffny"}'), "golden-config", 1, "config.json",
          "config.json with invalid UTF-8")
    entry(write("golden/config_trailing.json", '{"size": "tiny"}\n]}garbage\n'), "golden-config", 1,
          "data after the end", "config.json followed by trailing garbage")
    entry(write("golden/classes_truncated.json", '{"template": "A photo of a {}.", "seen": ["bicy'),
          "golden-classes", 1, "classes.json", "classes.json cut in the middle")
    entry(write("golden/classes_wrong_types.json",
                json.dumps({"template": 5, "seen": "bicycle", "unseen": {}, "all": 3, "prompts": [1, 2]})),
          "golden-classes", 1, "classes.json", "classes.json with wrong value types")
    entry(write("golden/classes_null.json", "null\n"), "golden-classes", 1, "classes.json",
          "classes.json is null")

    # ---- datasets (run by `ramc eval` once it exists; see tests/cli_hostile.sh)
    write("dataset/classes_ok.txt", "cat\ndog\n")
    write("dataset/ok.tsv", "a.jpg\tcat\n")
    entry(write("dataset/bad_json.json", '{"images": [["a.jpg", ["cat"]], '), "dataset", 1, "JSON",
          "dataset JSON cut in the middle")
    entry(write("dataset/not_object.json", '[["a.jpg", ["cat"]]]\n'), "dataset", 1, "",
          "dataset JSON is an array")
    entry(write("dataset/wrong_types.json", json.dumps({"images": [["a.jpg", "cat"], [5, ["dog"]]],
                                                        "classes": ["cat", "dog"]})), "dataset", 1,
          "images[0]", "labels given as a string, path given as a number")
    entry(write("dataset/label_not_string.json", json.dumps({"images": [["a.jpg", ["cat", 7]]],
                                                             "classes": ["cat", "dog"]})), "dataset", 1,
          "images[0][1][1]", "a label that is a number")
    entry(write("dataset/unknown_label.json", json.dumps({"images": [["a.jpg", ["cat", "zebar"]]],
                                                          "classes": ["cat", "dog"]})), "dataset", 1,
          "zebar", "label 'zebar' not among the classes (strict mode)")
    entry(write("dataset/empty_labels.json", json.dumps({"images": [["a.jpg", []]],
                                                         "classes": ["cat", "dog"]})), "dataset", 1,
          "images[0]", "an image with an empty label list (strict mode)")
    entry(write("dataset/trailing_garbage.json", json.dumps({"images": [["a.jpg", ["cat"]]]}) + "garbage"),
          "dataset", 1, "data after the end of the JSON value", "dataset JSON followed by ']}garbage'-style trailing bytes")
    entry(write("dataset/classes_nbsp.txt", "cat\n\u00a0\n"), "dataset-classes", 1, "white space",
          "class list with a name of only U+00A0")
    entry(write("dataset/no_tab.tsv", "a.jpg cat,dog\n"), "dataset", 1, ":1:", "TSV line without a tab")
    entry(write("dataset/stray_comma.tsv", "a.jpg\tcat,,dog\n"), "dataset", 1, ":1:",
          "TSV label list with an empty item")
    entry(write("dataset/unknown_label.tsv", "a.jpg\tcat\nb.jpg\tzebar\n"), "dataset", 1, "zebar",
          "TSV label not among the classes")
    entry(write("dataset/bad_utf8.tsv", b"a.jpg\tc\xffat\n"), "dataset", 1, ":1:",
          "TSV label with invalid UTF-8")
    entry(write("dataset/classes_dup.txt", "cat\ndog\ncat\n"), "dataset-classes", 1, "duplicate",
          "class list with a duplicate")
    entry(write("dataset/classes_empty.txt", "# none\n"), "dataset-classes", 1, "",
          "class list with no names")

    # ---- training configs (run by `ramc train` once it exists)
    entry(write("config/unknown_key.cfg", "base_lr = 5e-5\nbase_rl = 1\n"), "config", 1, "base_rl",
          "an unknown key (typo)")
    entry(write("config/bad_number.cfg", "base_lr = fast\n"), "config", 1, "base_lr",
          "a number key given 'fast'")
    entry(write("config/nan_value.cfg", "base_lr = nan\n"), "config", 1, "base_lr", "a NaN value")
    entry(write("config/bad_list.cfg", "depth_vision = [9, 10,\n"), "config", 1, "depth_vision",
          "an unterminated list")
    entry(write("config/bad_bool.cfg", "use_ema = maybe\n"), "config", 1, "use_ema", "a bad boolean")
    entry(write("config/twice.cfg", "batch_size = 8\nbatch_size = 16\n"), "config", 1, "batch_size",
          "a key set twice")
    entry(write("config/late_preset.cfg", "batch_size = 8\npreset = nus\n"), "config", 1, "preset",
          "preset after another key")
    entry(write("config/unterminated_string.cfg", 'train = "/data/x.json\n'), "config", 1, "train",
          "an unterminated quoted string")
    entry(write("config/bad_utf8.cfg", b"base_l\xff = 1\n"), "config", 1, "",
          "invalid UTF-8 in a key")
    entry(write("config/int_overflow.cfg", "batch_size = 99999999999999999999\n"), "config", 1,
          "batch_size", "an integer that overflows")
    entry(write("config/no_equals.cfg", "base_lr 5e-5\n"), "config", 1, ":1", "a line without '='")

    # ---- PyTorch checkpoints (kind torch: `ramc convert FILE OUT`, --clip FILE and
    # --adapter FILE must each fail naming the file, writing and printing nothing)
    torch_cases = [
        ("hostile_global.pt", "refuses the pickle global 'os.system'",
         "data.pkl calls GLOBAL os.system (a code-execution pickle)"),
        ("hostile_deep.pt", "nested more than 64 deep",
         "a recursion bomb: TorchScript modules nested 5000 deep"),
        ("hostile_memo.pt", "memo index out of range",
         "a memo slot of index 2^32-1 (LONG_BINPUT), then a read of slot 0"),
        ("hostile_truncated.pt", "not a readable zip archive",
         "a checkpoint cut in half (no zip central directory)"),
        ("hostile_bomb.pt", "too many values",
         "a zip bomb: 64 MiB of pickle NONE opcodes deflated to 64 KiB"),
        ("hostile_huge_storage.pt", "needs 1099511627776",
         "a storage record claiming 2^38 floats over an 8-byte entry"),
        ("hostile_missing_storage.pt", "missing from the archive",
         "a tensor whose storage entry is not in the archive"),
        ("hostile_size.pt", "holds 8 bytes", "a storage entry shorter than its record"),
        ("hostile_view.pt", "runs past the end of its storage",
         "a view (offset 1, 2 elements) past the end of a 2-element storage"),
        ("legacy.pt", "legacy format", "the pre-1.6 non-zip format: refused with how to convert"),
    ]
    for name, sub, desc in torch_cases:
        rel = "../fixtures/torch/" + name
        assert os.path.isfile(os.path.join(OUT, rel)), rel + ": run scripts/make_torch_fixtures.py"
        entry(rel, "torch", 1, sub, desc)

    MANIFEST.sort()
    with open(os.path.join(OUT, "MANIFEST.tsv"), "w") as f:
        f.write("# path\tkind\texit\tmessage_substring\tstatus\tdescription\n")
        f.write("# Generated by scripts/make_hostile_corpus.py; run by tests/cli_hostile.sh.\n")
        f.write("# kind: how the file is run (see tests/cli_hostile.sh); exit: expected exit status;\n")
        f.write("# message_substring: besides the file's base name, stderr must contain it (may be empty);\n")
        f.write("# status: ok, or known-bug (reported as XFAIL until the CLI is fixed).\n")
        for row in MANIFEST:
            f.write("\t".join(row) + "\n")


if __name__ == "__main__":
    main()
