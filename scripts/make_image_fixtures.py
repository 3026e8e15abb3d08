#!/usr/bin/python3
"""Regenerates tests/fixtures/images: small JPEG/PNG inputs and what Pillow
makes of them, so tests/test_image.c can check ramc's decoder and resampler
byte for byte.

Needs Debian 12's python3-pil (Pillow 9.4 on the system libjpeg62-turbo
2.1.5 and libpng 1.6) and python3-numpy; run it with /usr/bin/python3 so
that this Pillow, not a pip one, is used. The photographs come from
scikit-image's sample data as Debian packages it (python3-skimage, all
CC0 or public domain). Only the data folder is needed, not the package's
dependencies:

    apt-get download python3-skimage
    dpkg-deb -x python3-skimage_*.deb /tmp/skimage
    /usr/bin/python3 scripts/make_image_fixtures.py \
        --source /tmp/skimage/usr/lib/python3/dist-packages/skimage/data

Every expected output is raw interleaved RGB (height*width*3 bytes),
gzip-compressed (.rgb.gz); normalised tensors are little-endian float32 CHW
(.f32.gz). manifest.json lists them all.
"""
import argparse
import gzip
import json
import os
import struct
import sys
import zlib

import numpy as np
import PIL
from PIL import Image, features

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "tests", "fixtures", "images")
DEFAULT_SOURCE = "/usr/lib/python3/dist-packages/skimage/data"

FILTERS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# The sizes every photograph is resized to: the RAM test size, an aggressive
# non-square downscale (support scaled by >3) and a stretch that enlarges one
# axis while shrinking the other. The small PNGs below cover plain upscaling;
# single images add one-axis resizes (Pillow then skips a pass) and 1x1.
FULL_SIZES = [
    (224, 224, "bilinear"), (224, 224, "bicubic"),
    (97, 61, "bilinear"), (97, 61, "bicubic"),
    (263, 83, "bilinear"), (263, 83, "bicubic"),
]


# ----------------------------------------------------------- PNG writing
# Pillow cannot write 16-bit RGB, grey+alpha 16-bit, short palettes or
# interlaced files, so those are assembled by hand.

def _chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def write_png(path, width, height, depth, ctype, pixels, plte=None, trns=None,
              interlace=False, bpp_bits=None):
    """pixels: a list of `height` lists of per-pixel byte strings (for
    depth < 8, of ints that get packed)."""
    def pack_row(row):
        if depth >= 8:
            return b"".join(row)
        out, acc, nbits = bytearray(), 0, 0
        for v in row:
            acc = (acc << depth) | v
            nbits += depth
            if nbits == 8:
                out.append(acc)
                acc, nbits = 0, 0
        if nbits:
            out.append(acc << (8 - nbits))
        return bytes(out)

    raw = bytearray()
    if not interlace:
        for row in pixels:
            raw += b"\x00" + pack_row(row)
    else:
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
                  (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        for x0, y0, dx, dy in passes:
            if x0 >= width or y0 >= height:
                continue
            for y in range(y0, height, dy):
                raw += b"\x00" + pack_row(pixels[y][x0::dx])
    data = b"\x89PNG\r\n\x1a\n" + _chunk(
        b"IHDR", struct.pack(">IIBBBBB", width, height, depth, ctype, 0, 0,
                             1 if interlace else 0))
    if plte is not None:
        data += _chunk(b"PLTE", plte)
    if trns is not None:
        data += _chunk(b"tRNS", trns)
    data += _chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + _chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)


# ------------------------------------------------------------- helpers

def save_gz(path, data):
    # mtime=0 keeps regenerated fixtures byte-identical.
    with open(path, "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", compresslevel=9, mtime=0) as g:
            g.write(data)


def tensor(rgb, mean, std):
    """torchvision ToTensor + Normalize in float32, in the same order."""
    x = np.asarray(rgb, dtype=np.uint8).astype(np.float32)
    x = x / np.float32(255)
    x = x.transpose(2, 0, 1).copy()
    for c in range(3):
        x[c] = (x[c] - np.float32(mean[c])) / np.float32(std[c])
    return x.astype("<f4")


class Fixtures:
    def __init__(self, out):
        self.out = out
        self.entries = []

    def add(self, name, sizes, tensors=()):
        path = os.path.join(self.out, name)
        im = Image.open(path)
        src_mode = im.mode
        rgb = im.convert("RGB")
        stem = name.replace(".", "_")
        entry = {"file": name, "pillow_mode": src_mode,
                 "width": rgb.width, "height": rgb.height,
                 "decoded": stem + ".rgb.gz", "resizes": [], "tensors": []}
        save_gz(os.path.join(self.out, entry["decoded"]), rgb.tobytes())
        for w, h, flt in sizes:
            r = rgb.resize((w, h), FILTERS[flt])
            fname = f"{stem}_{w}x{h}_{flt}.rgb.gz"
            save_gz(os.path.join(self.out, fname), r.tobytes())
            entry["resizes"].append({"width": w, "height": h, "filter": flt,
                                     "file": fname})
        for w, h, flt, stats in tensors:
            r = rgb.resize((w, h), FILTERS[flt])
            mean, std = ((0.5,) * 3, (0.5,) * 3) if stats == "ram" else (CLIP_MEAN, CLIP_STD)
            fname = f"{stem}_{w}x{h}_{flt}_{stats}.f32.gz"
            save_gz(os.path.join(self.out, fname), tensor(r, mean, std).tobytes())
            entry["tensors"].append({"width": w, "height": h, "filter": flt,
                                     "mean": list(mean), "std": list(std),
                                     "file": fname})
        self.entries.append(entry)
        print(f"{name}: {src_mode} {rgb.size}, {os.path.getsize(path)} bytes")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", default=DEFAULT_SOURCE,
                    help="scikit-image data folder (default: %(default)s)")
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    src = lambda n: Image.open(os.path.join(args.source, n))
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(out):
        if f.endswith((".gz", ".jpg", ".png", ".json")):
            os.remove(os.path.join(out, f))
    fx = Fixtures(out)
    p = lambda n: os.path.join(out, n)
    rng = np.random.default_rng(20250301)

    # JPEG, as libjpeg-turbo decodes it for Pillow: baseline 4:4:4 ...
    cat = src("chelsea.png").convert("RGB").resize((240, 160), Image.LANCZOS)
    cat.save(p("cat_444.jpg"), quality=92, subsampling=0)
    fx.add("cat_444.jpg", FULL_SIZES + [(1, 1, "bilinear"), (1, 1, "bicubic")],
           tensors=[(97, 61, "bilinear", "ram"), (97, 61, "bicubic", "clip")])
    # ... 4:2:0 with odd sizes (partial MCUs, fancy upsampling at the edges) ...
    coffee = src("coffee.png").convert("RGB").crop((150, 60, 451, 261))
    coffee.save(p("coffee_420.jpg"), quality=85, subsampling=2)
    fx.add("coffee_420.jpg", FULL_SIZES + [(301, 97, "bicubic"), (150, 201, "bilinear")])
    # ... progressive 4:2:2 ...
    astro = src("astronaut.png").convert("RGB").resize((255, 255), Image.LANCZOS)
    astro.save(p("astronaut_prog.jpg"), quality=80, subsampling=1, progressive=True)
    fx.add("astronaut_prog.jpg", FULL_SIZES)
    # ... greyscale ...
    cam = src("camera.png").convert("L").resize((199, 257), Image.LANCZOS)
    cam.save(p("camera_grey.jpg"), quality=90)
    fx.add("camera_grey.jpg", FULL_SIZES)
    # ... a larger 4:2:0 photo for the usual ~2x downscale to 224 ...
    rocket = src("rocket.jpg").convert("RGB").resize((480, 320), Image.LANCZOS)
    rocket.save(p("rocket_420.jpg"), quality=75, subsampling=2)
    fx.add("rocket_420.jpg", [(224, 224, "bilinear"), (224, 224, "bicubic")],
           tensors=[(224, 224, "bilinear", "ram")])
    # ... and Adobe CMYK (Pillow writes inverted CMYK with an Adobe marker).
    coffee.resize((120, 80), Image.LANCZOS).convert("CMYK").save(p("coffee_cmyk.jpg"), quality=90)
    fx.add("coffee_cmyk.jpg", [(129, 97, "bilinear")])

    # PNG: 8-bit RGB, RGBA, greyscale, palette (with tRNS) from Pillow ...
    cat.crop((40, 20, 200, 140)).save(p("cat_rgb.png"))
    fx.add("cat_rgb.png", [(224, 224, "bilinear")])
    src("logo.png").convert("RGBA").resize((96, 96), Image.LANCZOS).save(p("logo_rgba.png"))
    fx.add("logo_rgba.png", [(129, 97, "bicubic")])
    cam.crop((0, 0, 120, 90)).save(p("camera_grey.png"))
    fx.add("camera_grey.png", [(121, 90, "bicubic")])
    pal = cat.resize((120, 80), Image.LANCZOS).quantize(64)
    pal.save(p("cat_palette.png"), transparency=3)
    fx.add("cat_palette.png", [(129, 97, "bicubic")])

    # ... and hand-made ones for what Pillow reads but does not write.
    small = np.asarray(coffee.resize((64, 48), Image.LANCZOS), dtype=np.uint16)
    low = rng.integers(0, 256, size=small.shape, dtype=np.uint16)
    rgb16 = (small << 8) | low
    write_png(p("coffee_rgb16.png"), 64, 48, 16, 2,
              [[struct.pack(">3H", *px) for px in row] for row in rgb16])
    fx.add("coffee_rgb16.png", [(129, 97, "bilinear")])
    # 16-bit grey becomes Pillow mode "I", which convert("RGB") clips at 255.
    grey = np.asarray(cam.resize((64, 48), Image.LANCZOS), dtype=np.uint32)
    g16 = grey * 2 + rng.integers(0, 2, size=grey.shape)
    g16[0, :8] = [0, 1, 254, 255, 256, 1000, 65535, 32768]
    write_png(p("camera_grey16.png"), 64, 48, 16, 0,
              [[struct.pack(">H", int(v)) for v in row] for row in g16])
    fx.add("camera_grey16.png", [(129, 97, "bicubic")])
    ga = np.stack([(grey << 8) | 0x7F, rng.integers(0, 65536, size=grey.shape)], -1)
    write_png(p("camera_ga16.png"), 64, 48, 16, 4,
              [[struct.pack(">2H", int(a), int(b)) for a, b in row] for row in ga])
    fx.add("camera_ga16.png", [])
    write_png(p("camera_ga8.png"), 64, 48, 8, 4,
              [[bytes([int(v), (x * 7) & 255]) for x, v in enumerate(row)] for row in grey])
    fx.add("camera_ga8.png", [])
    for depth in (1, 2, 4):
        levels = (1 << depth) - 1
        q = (grey * levels + 127) // 255
        write_png(p(f"camera_grey{depth}.png"), 64, 48, depth, 0,
                  [[int(v) for v in row] for row in q])
        fx.add(f"camera_grey{depth}.png", [])
    # A 4-bit palette with only 5 entries but indices up to 15: Pillow shows
    # the missing entries as its default grey ramp.
    pal4 = (grey * 15 + 127) // 255
    write_png(p("camera_pal4_short.png"), 64, 48, 4, 3,
              [[int(v) for v in row] for row in pal4],
              plte=bytes([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255]),
              trns=bytes([0, 128]))
    fx.add("camera_pal4_short.png", [])
    inter = np.asarray(cat.crop((0, 0, 37, 29)))
    write_png(p("cat_interlaced.png"), 37, 29, 8, 2,
              [[bytes(px) for px in row] for row in inter], interlace=True)
    fx.add("cat_interlaced.png", [(74, 58, "bicubic"), (37, 64, "bilinear"), (80, 29, "bicubic")])

    manifest = {
        "generator": "scripts/make_image_fixtures.py",
        "pillow": PIL.__version__,
        "libjpeg_turbo": features.version("jpg"),
        "images": fx.entries,
    }
    with open(p("manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(p(n)) for n in os.listdir(out))
    print(f"{len(os.listdir(out))} files, {total} bytes in {out}")


if __name__ == "__main__":
    sys.exit(main())
