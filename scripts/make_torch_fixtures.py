#!/usr/bin/python3
"""Writes the PyTorch checkpoint fixtures under tests/fixtures/torch/.

Needs Debian's python3-torch (`apt-get install python3-torch`); run it with
Debian's interpreter, /usr/bin/python3. The outputs are committed, so the
test suite never needs torch:

    /usr/bin/python3 scripts/make_torch_fixtures.py [GOLDEN_SET_DIR]

GOLDEN_SET_DIR is a single-step golden set (default tests/golden/tiny-s0, or
../shared/golden/tiny-s0): its weights.safetensors and adapter.safetensors
are the tensors every fixture holds, so a test can compare each format with
the safetensors original.

What it writes (tensors stored as float16 to keep the files small, except
where a format's point is float32):
  clip_state_dict.pt   torch.save({"state_dict": {"module." + name: tensor},
                       "epoch": 3}): the open_clip / DataParallel wrapping
  clip_plain.bin       torch.save(OrderedDict) of float32 tensors, some saved
                       as non-contiguous views (transposed storage)
  clip_scripted.pt     torch.jit.save of a scripted module tree whose
                       attributes carry the OpenAI names (as OpenAI's
                       ViT-B-16.pt), with extra int tensors (input_resolution,
                       attn_mask) that a state_dict() also shows
  ram_state_dict.pth   a RAM_Model-style state dict: the adapter's tensors
                       under their official names, a few clip_model.* and
                       clip_model_teacher.* entries that a loader must ignore
  legacy.pt            torch.save(..., _use_new_zipfile_serialization=False)
  hostile_*.pt         zip archives whose data.pkl calls os.system, nests
                       modules past any sane depth, stores to a memo index of
                       2^32-1, names a storage that is not in the archive,
                       views past the end of its storage; a truncated zip; a
                       zip bomb (64 MiB of pickle in 64 KiB); a storage claiming
                       2^38 floats
"""
import collections
import io
import json
import os
import struct
import sys
import zipfile

import torch


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    out = collections.OrderedDict()
    dtypes = {"F32": torch.float32, "F16": torch.float16, "I64": torch.int64, "I32": torch.int32}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = bytearray(blob[8 + n + a:8 + n + b])
        t = torch.frombuffer(raw, dtype=dtypes[info["dtype"]]) if raw else torch.empty(0, dtype=dtypes[info["dtype"]])
        out[name] = t.reshape(info["shape"]).clone()
    return out


class Holder(torch.nn.Module):
    """A module that only holds named tensors and submodules."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def module_tree(state):
    root = Holder()
    for name, t in state.items():
        parts = name.split(".")
        node = root
        for p in parts[:-1]:
            if not hasattr(node, p):
                node.add_module(p, Holder())
            node = getattr(node, p)
        if t.is_floating_point():
            node.register_parameter(parts[-1], torch.nn.Parameter(t, requires_grad=False))
        else:
            node.register_buffer(parts[-1], t)
    return root


def entry(name, compress=zipfile.ZIP_STORED):
    """A zip entry with a fixed date, so the fixtures are the same bytes every run."""
    return zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), compress


def zip_with_pickle(path, pkl_bytes, storages=()):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(*entry("archive/data.pkl")[:1], pkl_bytes)
        z.writestr(*entry("archive/byteorder")[:1], "little")
        for key, data in storages:
            z.writestr(*entry("archive/data/" + key)[:1], data)


def main():
    src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    golden = sys.argv[1] if len(sys.argv) > 1 else None
    if golden is None:
        for cand in (os.path.join(src, "tests/golden/tiny-s0"), os.path.join(src, "../shared/golden/tiny-s0")):
            if os.path.exists(os.path.join(cand, "weights.safetensors")):
                golden = cand
                break
    out = os.path.join(src, "tests/fixtures/torch")
    os.makedirs(out, exist_ok=True)
    clip = read_safetensors(os.path.join(golden, "weights.safetensors"))
    adapter = read_safetensors(os.path.join(golden, "adapter.safetensors"))
    half = collections.OrderedDict((k, v.half() if v.is_floating_point() else v) for k, v in clip.items())

    torch.save({"state_dict": collections.OrderedDict(("module." + k, v) for k, v in half.items()),
                "epoch": 3, "note": "open_clip-style wrapping"},
               os.path.join(out, "clip_state_dict.pt"))

    plain = collections.OrderedDict()
    for k, v in clip.items():
        if v.dim() == 2 and v.shape[0] > 1 and v.shape[1] > 1 and "token_embedding" not in k:
            plain[k] = v.t().contiguous().t()  # same values, column-major storage
        else:
            plain[k] = v.half() if k == "token_embedding.weight" else v
    torch.save(plain, os.path.join(out, "clip_plain.bin"))

    scripted_state = collections.OrderedDict(half)
    scripted_state["input_resolution"] = torch.tensor(32)
    scripted_state["transformer.resblocks.0.attn_mask"] = torch.full((77, 77), float("-inf")).triu(1).half()
    torch.jit.save(torch.jit.script(module_tree(scripted_state)), os.path.join(out, "clip_scripted.pt"))

    ram = collections.OrderedDict()
    for k, v in adapter.items():
        ram[k] = v
    ram["clip_model.logit_scale"] = clip["logit_scale"]
    ram["clip_model.visual.attn.qkv.weight"] = clip["visual.transformer.resblocks.3.attn.in_proj_weight"].half()
    ram["clip_model_teacher.logit_scale"] = clip["logit_scale"]
    torch.save(ram, os.path.join(out, "ram_state_dict.pth"))

    # (the legacy format names storages by object id: its bytes differ run to run)
    torch.save({"a": torch.zeros(2)}, os.path.join(out, "legacy.pt"), _use_new_zipfile_serialization=False)

    # Hostile archives, pickles written by hand (protocol 2).
    def s(text):  # SHORT_BINUNICODE
        b = text.encode()
        return b"\x8c" + bytes([len(b)]) + b

    def tensor(key, numel, offset=0, size=(2,), stride=(1,)):
        ints = lambda t: b"(" + b"".join(b"K" + bytes([x]) for x in t) + b"t"
        return (b"ctorch._utils\n_rebuild_tensor_v2\n(" +
                b"(" + s("storage") + b"ctorch\nFloatStorage\n" + s(key) + s("cpu") + b"K" + bytes([numel]) + b"tQ" +
                b"K" + bytes([offset]) + ints(size) + ints(stride) + b"\x89" + b"ccollections\nOrderedDict\n)R" +
                b"tR")

    zip_with_pickle(os.path.join(out, "hostile_global.pt"),
                    b"\x80\x02cos\nsystem\n" + s("echo pwned") + b"\x85R.")
    depth = 5000
    deep = b"\x80\x02" + (b"c__torch__\nM\n)\x81}" + s("m")) * depth + b"}" + b"sb" * depth + b"."
    zip_with_pickle(os.path.join(out, "hostile_deep.pt"), deep)
    zip_with_pickle(os.path.join(out, "hostile_memo.pt"), b"\x80\x02}r\xff\xff\xff\xffh\x00.")
    zip_with_pickle(os.path.join(out, "hostile_missing_storage.pt"),
                    b"\x80\x02}" + s("w") + tensor("7", 2) + b"s.")
    zip_with_pickle(os.path.join(out, "hostile_view.pt"),
                    b"\x80\x02}" + s("w") + tensor("0", 2, offset=1, size=(2,), stride=(1,)) + b"s.",
                    [("0", struct.pack("<2f", 1.0, 2.0))])
    zip_with_pickle(os.path.join(out, "hostile_size.pt"),
                    b"\x80\x02}" + s("w") + tensor("0", 4) + b"s.",
                    [("0", struct.pack("<2f", 1.0, 2.0))])
    # a zip bomb: 64 MiB of pickle NONE opcodes deflated to ~64 KiB (the value
    # bound refuses it); and a storage record claiming 2^38 floats
    bomb = os.path.join(out, "hostile_bomb.pt")
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr(entry("archive/data.pkl")[0], b"\x80\x02" + b"N" * (64 << 20) + b".",
                   compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    huge = (b"\x80\x02}" + s("w") + b"ctorch._utils\n_rebuild_tensor_v2\n((" + s("storage") +
            b"ctorch\nFloatStorage\n" + s("0") + s("cpu") + b"\x8a\x05\x00\x00\x00\x00\x40tQK\x00(K\x02tK\x01\x85\x89" +
            b"ccollections\nOrderedDict\n)RtRs.")
    zip_with_pickle(os.path.join(out, "hostile_huge_storage.pt"), huge, [("0", struct.pack("<2f", 1.0, 2.0))])
    with open(os.path.join(out, "ram_state_dict.pth"), "rb") as f:
        whole = f.read()
    with open(os.path.join(out, "hostile_truncated.pt"), "wb") as f:
        f.write(whole[:len(whole) // 2])


if __name__ == "__main__":
    main()
