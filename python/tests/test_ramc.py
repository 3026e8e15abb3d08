"""The Python package against the C library and the ramc tool it wraps.
Run: RAMC_LIBRARY=build/libramc.so RAMC_BINARY=build/ramc RAMC_SOURCE_DIR=. \
     PYTHONPATH=python python3 -m unittest discover -s python/tests"""
import json
import os
import struct
import subprocess
import tempfile
import unittest
import zlib

import numpy as np

import ramc

SRC = os.environ.get("RAMC_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ.get("RAMC_BINARY", os.path.join(SRC, "build", "ramc"))
SAMPLES = os.path.join(SRC, "data", "samples")
LABELS = ["red star", "blue circle", "green heart", "black ring", "white star"]


def write_png(path, rgb):
    """A minimal 8-bit RGB PNG writer (the test must not need Pillow)."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class TestRamc(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.model = ramc.Model()
        cls.images = sorted(os.path.join(SAMPLES, f) for f in os.listdir(SAMPLES) if f.endswith(".png"))

    def test_version_is_the_tools(self):
        out = subprocess.run([BINARY, "--version"], capture_output=True, text=True, check=True).stdout
        self.assertIn(ramc.version(), out)

    def test_scores_match_the_command_line(self):
        img = self.images[0]
        r = self.model.predict(img, LABELS)[0]
        out = subprocess.run([BINARY, "predict", "--labels", ",".join(LABELS), "--top-k", "5",
                              "--format", "json", img], capture_output=True, text=True, check=True).stdout
        cli = {d["label"]: d["score"] for d in json.loads(out.strip().splitlines()[0])["labels"]}
        self.assertEqual(len(cli), len(LABELS))
        for name, score in r["labels"]:
            self.assertAlmostEqual(score, cli[name], places=5)
        self.assertAlmostEqual(float(r["scores"].sum()), 1.0, places=5)

    def test_ranking_top_k_threshold(self):
        r = self.model.predict(self.images[:3], LABELS, top_k=2)
        self.assertEqual(len(r), 3)
        for res in r:
            self.assertEqual(len(res["labels"]), 2)
            self.assertGreaterEqual(res["labels"][0][1], res["labels"][1][1])
            self.assertEqual(res["labels"][0][1], float(res["scores"].max()))
        t = self.model.predict(self.images[0], LABELS, threshold=0.2)[0]
        self.assertTrue(all(s >= 0.2 for _, s in t["labels"]))
        self.assertEqual(len(t["labels"]), int((t["scores"] >= 0.2).sum()))

    def test_independent_score(self):
        img = self.images[0]
        few = self.model.predict(img, LABELS[:2], score="independent")[0]["scores"]
        many = self.model.predict(img, LABELS, score="independent")[0]["scores"]
        # each label's own score: the same with 2 labels as with 5, not summing to 1
        np.testing.assert_allclose(few, many[:2], rtol=1e-5)
        official = self.model.predict(img, LABELS[:2])[0]["scores"]
        self.assertAlmostEqual(float(official.sum()), 1.0, places=5)
        self.assertGreater(abs(float(many.sum()) - 1.0), 1e-3)
        out = subprocess.run([BINARY, "predict", "--labels", ",".join(LABELS), "--top-k", "0",
                              "--score", "independent", img], capture_output=True, text=True,
                             check=True).stdout
        line = json.loads(out.strip().splitlines()[0])
        self.assertEqual(line["score_type"], "independent")
        for d in line["labels"]:
            self.assertAlmostEqual(d["score"], float(many[LABELS.index(d["label"])]), places=5)
        # per-label thresholds: each label against its own
        limits = {n: (0.0 if i % 2 else 1.0) for i, n in enumerate(LABELS)}
        limits["not asked"] = 0.5
        kept = self.model.predict(img, LABELS, threshold=limits, score="independent")[0]["labels"]
        self.assertEqual(sorted(n for n, _ in kept), sorted(LABELS[1::2]))
        with self.assertRaises(ValueError):
            self.model.predict(img, LABELS, threshold={"red star": 0.5})
        with self.assertRaises(ValueError):
            self.model.predict(img, LABELS, score="calibrated")

    def test_array_equals_file(self):
        rng = np.random.default_rng(0)
        rgb = rng.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "noise.png")
            write_png(path, rgb)
            labels = self.model.labels(LABELS)
            a = self.model.predict(rgb, labels)[0]["scores"]
            b = self.model.predict(path, labels)[0]["scores"]
        np.testing.assert_array_equal(a, b)

    def test_heatmaps(self):
        r = self.model.predict(self.images[0], LABELS, explain=True)[0]
        h = r["heatmaps"]
        self.assertEqual(h.shape, (len(LABELS), self.model.grid, self.model.grid))
        self.assertTrue(np.all(h >= 0) and np.all(np.isfinite(h)))

    def test_errors_carry_ramcs_message(self):
        with self.assertRaises(ramc.RamcError) as e:
            self.model.predict("/nonexistent/x.png", LABELS)
        self.assertIn("/nonexistent/x.png", str(e.exception))
        with self.assertRaises(ramc.RamcError):
            self.model.labels([])
        with self.assertRaises(ramc.RamcError) as e:
            self.model.labels(["cat", "cat"])
        self.assertIn("duplicate", str(e.exception))
        with self.assertRaises(ramc.RamcError) as e:
            ramc.Model(clip="/nonexistent/clip.safetensors")
        self.assertIn("/nonexistent/clip.safetensors", str(e.exception))
        with self.assertRaises(ValueError):
            self.model.predict(np.zeros((4, 4), dtype=np.uint8), LABELS)


if __name__ == "__main__":
    unittest.main()
