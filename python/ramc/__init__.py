"""ramc from Python: RAM (Recover and Match) open-vocabulary multi-label image
recognition, through ctypes over the C library libramc.so. Nothing is compiled
at install time; numpy is the only dependency.

    import ramc
    model = ramc.Model()                      # the default model shipped with ramc
    for r in model.predict(["photo.jpg"], ["cat", "dog", "red star"], top_k=2):
        print(r["image"], r["labels"])        # [("cat", 0.61), ("red star", 0.22)]

The library is found from $RAMC_LIBRARY (a path to libramc.so), else the
system's search (ldconfig, LD_LIBRARY_PATH). Errors from the library are
raised as ramc.RamcError with ramc's message, which names the file and the
problem.
"""
import ctypes
import ctypes.util
import os

import numpy as np

__all__ = ["Model", "Labels", "RamcError", "version"]


class RamcError(Exception):
    """A failure reported by libramc; str() is its message."""


def _load_library():
    candidates = []
    if os.environ.get("RAMC_LIBRARY"):
        candidates.append(os.environ["RAMC_LIBRARY"])
    candidates += ["libramc.so.0", "libramc.so"]
    found = ctypes.util.find_library("ramc")
    if found:
        candidates.append(found)
    errors = []
    for c in candidates:
        try:
            return ctypes.CDLL(c)
        except OSError as e:
            errors.append(f"{c}: {e}")
    raise RamcError("libramc.so not found (set RAMC_LIBRARY to its path, or install ramc "
                    "and run ldconfig): " + "; ".join(errors))


_lib = _load_library()


class _ClipParams(ctypes.Structure):
    _fields_ = [("vision_heads", ctypes.c_int), ("text_heads", ctypes.c_int),
                ("round_fp16_like_official", ctypes.c_int), ("bf16", ctypes.c_int),
                ("pack_weights", ctypes.c_int), ("threads", ctypes.c_int)]


class _ClipInfo(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int) for n in (
        "image_size", "patch_size", "grid", "n_patches", "vision_width", "vision_layers",
        "vision_heads", "vision_mlp", "text_width", "text_layers", "text_heads", "text_mlp",
        "context_length", "vocab_size", "embed_dim")] + [("logit_scale", ctypes.c_float)]


class _Variant(ctypes.Structure):
    _fields_ = [("matching", ctypes.c_int), ("no_saa", ctypes.c_int), ("no_tss", ctypes.c_int),
                ("uniform_source", ctypes.c_int)]


class _PredictParams(ctypes.Structure):
    """ramc_predict_params of ramc.h, field for field (enums are C ints)."""
    _fields_ = [("mode", ctypes.c_int), ("per_image_sinkhorn", ctypes.c_int),
                ("reg", ctypes.c_float), ("max_iter", ctypes.c_int),
                ("tau_global", ctypes.c_float), ("tau_local", ctypes.c_float),
                ("fuse_batch", ctypes.c_int), ("ablation", _Variant), ("threads", ctypes.c_int),
                ("score", ctypes.c_int)]


# ramc_score: what a score means (docs/predict.md, "Scores")
SCORES = {"official": 0, "independent": 1}


class _Image(ctypes.Structure):
    _fields_ = [("width", ctypes.c_int), ("height", ctypes.c_int),
                ("rgb", ctypes.POINTER(ctypes.c_uint8))]


_P = ctypes.c_void_p
_F = ctypes.POINTER(ctypes.c_float)


def _sig(name, restype, *args):
    f = getattr(_lib, name)
    f.restype = restype
    f.argtypes = list(args)
    return f


_last_error = _sig("ramc_last_error", ctypes.c_char_p)
_version = _sig("ramc_version", ctypes.c_char_p)
_clip_default_params = _sig("ramc_clip_default_params", _ClipParams)
_default_model_paths = _sig("ramc_default_model_paths", ctypes.c_int, ctypes.c_char_p,
                            ctypes.c_char_p, ctypes.c_size_t)
_model_load = _sig("ramc_model_load", ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p,
                   ctypes.POINTER(_ClipParams), ctypes.POINTER(_P))
_model_free = _sig("ramc_model_free", None, _P)
_model_get_info = _sig("ramc_model_get_info", _ClipInfo, _P)
_model_has_adapter = _sig("ramc_model_has_adapter", ctypes.c_int, _P)
_labels_encode = _sig("ramc_labels_encode", ctypes.c_int, _P, _P,
                      ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_char_p,
                      ctypes.POINTER(_P))
_labels_encode_cached = _sig("ramc_labels_encode_cached", ctypes.c_int, _P, _P,
                             ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_char_p,
                             ctypes.c_char_p, ctypes.POINTER(_P))
_labels_cache_hits = _sig("ramc_labels_cache_hits", ctypes.c_int, _P)
_labels_free = _sig("ramc_labels_free", None, _P)
_labels_count = _sig("ramc_labels_count", ctypes.c_int, _P)
_labels_name = _sig("ramc_labels_name", ctypes.c_char_p, _P, ctypes.c_int)
_preprocess_file = _sig("ramc_preprocess_file", ctypes.c_int, _P, ctypes.c_char_p, _P, _F)
_preprocess_image = _sig("ramc_preprocess_image", ctypes.c_int, _P, ctypes.POINTER(_Image), _P, _F)
_predict_default_params = _sig("ramc_predict_default_params", _PredictParams)
_predict = _sig("ramc_predict", ctypes.c_int, _P, _P, _F, ctypes.c_int, _P, _F, _F, _F)


def _check(status):
    if status != 0:
        raise RamcError(_last_error().decode("utf-8", "replace"))


def _enc(s):
    return None if s is None else os.fsencode(s)


def version():
    """The version of the loaded libramc."""
    return _version().decode()


class Labels:
    """A label set encoded by one Model (its text features); reusable across calls."""

    def __init__(self, model, names, template=None, cache_dir=None):
        if isinstance(names, str):
            raise TypeError("names must be a list of strings, not one string")
        names = list(names)
        arr = (ctypes.c_char_p * max(len(names), 1))(*[n.encode("utf-8") for n in names])
        handle = _P()
        _check(_labels_encode_cached(model._handle, None, arr, len(names), _enc(template),
                                     _enc(cache_dir), ctypes.byref(handle)))
        self._handle = handle
        self.cache_hits = _labels_cache_hits(handle)  # labels read from the label cache
        self._model = model  # keeps the model alive as long as its labels
        self.names = [_labels_name(handle, i).decode("utf-8")
                      for i in range(_labels_count(handle))]

    def __len__(self):
        return len(self.names)

    def close(self):
        if getattr(self, "_handle", None):
            _labels_free(self._handle)
            self._handle = None

    __del__ = close


class Model:
    """CLIP weights plus, optionally, a RAM adapter. Model() is the default model."""

    def __init__(self, clip=None, adapter=None, threads=0, vision_heads=0, text_heads=0, bf16=False):
        if clip is None:
            c = ctypes.create_string_buffer(4096)
            a = ctypes.create_string_buffer(4096)
            _check(_default_model_paths(c, a, 4096))
            clip, adapter = c.value, (a.value if adapter is None else _enc(adapter))
            if adapter is not None and not os.path.exists(adapter):
                adapter = None
        else:
            clip, adapter = _enc(clip), _enc(adapter)
        params = _clip_default_params()
        params.threads, params.vision_heads, params.text_heads = threads, vision_heads, text_heads
        params.bf16 = 1 if bf16 else 0
        handle = _P()
        _check(_model_load(clip, adapter, ctypes.byref(params), ctypes.byref(handle)))
        self._handle = handle
        info = _model_get_info(handle)
        self.image_size, self.grid, self.n_patches = info.image_size, info.grid, info.n_patches
        self.has_adapter = bool(_model_has_adapter(handle))

    def labels(self, names, template=None, cache_dir=None):
        """Encodes label names ("A photo of a {}." unless template says otherwise);
        with cache_dir, through ramc's persistent label cache in that folder."""
        return Labels(self, names, template, cache_dir)

    def _tensor(self, image, out):
        ptr = out.ctypes.data_as(_F)
        if isinstance(image, (str, bytes, os.PathLike)):
            _check(_preprocess_file(self._handle, os.fsencode(image), None, ptr))
            return
        a = np.asarray(image)
        if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
            raise ValueError(f"an image array must be uint8 of shape (H, W, 3), got {a.dtype} {a.shape}")
        a = np.ascontiguousarray(a)
        img = _Image(a.shape[1], a.shape[0], a.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)))
        _check(_preprocess_image(self._handle, ctypes.byref(img), None, ptr))

    def predict(self, images, labels, top_k=None, threshold=None, explain=False, batch=8,
                score="official"):
        """Scores every label for every image.

        images: paths or uint8 (H, W, 3) arrays (one, or a list). labels: a
        Labels of this model, or a list of names. Returns one dict per image:
        "labels": [(name, score), ...] best first, cut to top_k and to scores
        >= threshold; "scores": float32 array [C]; with explain=True "heatmaps":
        float32 [C, grid, grid], each label's transport plan over the patches.
        score: "official" (RAM's score, which sums to 1 over the labels asked) or
        "independent" (each label's own, the same whatever else is asked, so
        one threshold means the same for 5 labels as for 500; docs/predict.md).
        threshold: one number, or a dict {label: threshold} of per-label
        thresholds (as `ramc predict --thresholds`): every label asked must be
        in it; entries for labels not asked are ignored.
        """
        if score not in SCORES:
            raise ValueError(f"score must be one of {sorted(SCORES)}, not {score!r}")
        params = _predict_default_params()
        params.score = SCORES[score]
        if not isinstance(labels, Labels):
            labels = self.labels(labels)
        if isinstance(images, (str, bytes, os.PathLike, np.ndarray)):
            images = [images]
        images = list(images)
        S, C, N = self.image_size, len(labels), self.n_patches
        if isinstance(threshold, dict):
            missing = [n for n in labels.names if n not in threshold]
            if missing:
                raise ValueError(f"no threshold for label {missing[0]!r} in the threshold dict")
            limit = np.array([float(threshold[n]) for n in labels.names], dtype=np.float32)
        elif threshold is not None:
            limit = np.full(C, float(threshold), dtype=np.float32)
        else:
            limit = None
        results = []
        for start in range(0, len(images), batch):
            chunk = images[start:start + batch]
            B = len(chunk)
            x = np.empty((B, 3, S, S), dtype=np.float32)
            for b, im in enumerate(chunk):
                self._tensor(im, x[b])
            scores = np.empty((B, C), dtype=np.float32)
            plan = np.empty((B, N, C), dtype=np.float32) if explain else None
            _check(_predict(self._handle, labels._handle, x.ctypes.data_as(_F), B, ctypes.byref(params),
                            scores.ctypes.data_as(_F),
                            plan.ctypes.data_as(_F) if plan is not None else None, None))
            for b, im in enumerate(chunk):
                order = np.argsort(-scores[b], kind="stable")
                if top_k is not None:
                    order = order[:top_k]
                ranked = [(labels.names[c], float(scores[b, c])) for c in order
                          if limit is None or scores[b, c] >= limit[c]]
                r = {"image": im if isinstance(im, (str, os.PathLike)) else None,
                     "labels": ranked, "scores": scores[b].copy()}
                if plan is not None:
                    r["heatmaps"] = plan[b].T.reshape(C, self.grid, self.grid).copy()
                results.append(r)
        return results

    def close(self):
        if getattr(self, "_handle", None):
            _model_free(self._handle)
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    __del__ = close
