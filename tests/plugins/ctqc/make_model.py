"""Write the CT image-quality plug-in's model: ``cardiogate_ctqc/model/model.onnx`` and its
``card.json``. The graph is analytic (no weights, no training): per slice, the image noise
in the central region, estimated robustly so that anatomy does not count as noise.

Per slice of ``image`` (batch, 1, rows, columns) in HU:

1. the central region: rows ``rows // 4`` to ``rows - rows // 4``, the same for columns
   (Shape, Gather, Div, Sub, Slice);
2. the differences of horizontally adjacent pixels there (Slice, Sub), which cancel the
   slowly varying anatomy and keep the noise, with twice its variance;
3. the noise standard deviation as the median absolute deviation of those differences,
   x 1.4826 (MAD to standard deviation of a normal distribution) / sqrt(2) (TopK and
   ReduceMin take the medians: the lower median of an even count).

``noise_hu`` is (batch,). Run ``python tests/plugins/ctqc/make_model.py`` (in the
repository's virtual environment, which has ``onnx``) after changing the graph; the card's
sha256 follows the model.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from cardiogate.inference.card import CARD_FILE, MODEL_FILE, ModelCard, TensorSpec, file_sha256

FOLDER = Path(__file__).resolve().parent / "cardiogate_ctqc" / "model"
NAME, VERSION = "cardiogate-ctqc-noise", "1.0.0"
MARGIN_DIVISOR = 4  # the central region leaves rows // 4 (columns // 4) on each side
MAD_TO_SD = 1.4826  # a normal distribution's standard deviation per median absolute deviation
OPSET = 17


def _const(name: str, values: list[int] | list[float], dtype: type[np.generic]) -> onnx.NodeProto:
    return helper.make_node(
        "Constant",
        [],
        [name],
        value=numpy_helper.from_array(np.asarray(values, dtype=dtype), name),
    )


def _median(values: str, out: str, k: str, keepdims: int) -> list[onnx.NodeProto]:
    """Nodes for the per-row lower median of (batch, n) ``values``: the minimum of its
    ``k = n // 2 + 1`` largest."""
    return [
        helper.make_node("TopK", [values, k], [f"{out}_top", f"{out}_idx"], axis=1, largest=1),
        helper.make_node("ReduceMin", [f"{out}_top"], [out], axes=[1], keepdims=keepdims),
    ]


def build_graph() -> onnx.ModelProto:
    """The noise graph (opset 17)."""
    i64 = np.int64
    nodes = [
        _const("two_idx", [2], i64),
        _const("three_idx", [3], i64),
        _const("divisor", [MARGIN_DIVISOR], i64),
        _const("plane_axes", [2, 3], i64),
        _const("column_axis", [3], i64),
        _const("zero", [0], i64),
        _const("one", [1], i64),
        _const("two", [2], i64),
        _const("minus_one", [-1], i64),
        _const("to_end", [np.iinfo(np.int64).max], i64),
        _const("flat_shape", [0, -1], i64),
        _const("scale", [MAD_TO_SD / math.sqrt(2.0)], np.float32),
        helper.make_node("Shape", ["image"], ["shape"]),
        helper.make_node("Gather", ["shape", "two_idx"], ["rows"], axis=0),
        helper.make_node("Gather", ["shape", "three_idx"], ["columns"], axis=0),
        helper.make_node("Div", ["rows", "divisor"], ["row_start"]),
        helper.make_node("Sub", ["rows", "row_start"], ["row_end"]),
        helper.make_node("Div", ["columns", "divisor"], ["column_start"]),
        helper.make_node("Sub", ["columns", "column_start"], ["column_end"]),
        helper.make_node("Concat", ["row_start", "column_start"], ["starts"], axis=0),
        helper.make_node("Concat", ["row_end", "column_end"], ["ends"], axis=0),
        helper.make_node("Slice", ["image", "starts", "ends", "plane_axes"], ["region"]),
        helper.make_node("Slice", ["region", "one", "to_end", "column_axis"], ["right"]),
        helper.make_node("Slice", ["region", "zero", "minus_one", "column_axis"], ["left"]),
        helper.make_node("Sub", ["right", "left"], ["differences"]),
        helper.make_node("Reshape", ["differences", "flat_shape"], ["flat"]),
        helper.make_node("Shape", ["flat"], ["flat_dims"]),
        helper.make_node("Gather", ["flat_dims", "one"], ["count"], axis=0),
        helper.make_node("Div", ["count", "two"], ["half"]),
        helper.make_node("Add", ["half", "one"], ["k"]),
        *_median("flat", "centre", "k", keepdims=1),
        helper.make_node("Sub", ["flat", "centre"], ["deviations"]),
        helper.make_node("Abs", ["deviations"], ["absolute"]),
        *_median("absolute", "mad", "k", keepdims=0),
        helper.make_node("Mul", ["mad", "scale"], ["noise_hu"]),
    ]
    graph = helper.make_graph(
        nodes,
        "ctqc_noise",
        [
            helper.make_tensor_value_info(
                "image", TensorProto.FLOAT, ["batch", 1, "rows", "columns"]
            )
        ],
        [helper.make_tensor_value_info("noise_hu", TensorProto.FLOAT, ["batch"])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="cardiogate-ctqc"
    )
    model.ir_version = 8  # readable by every onnxruntime cardiogate supports
    onnx.checker.check_model(model, full_check=True)
    return model


def card(sha256: str) -> ModelCard:
    return ModelCard(
        name=NAME,
        version=VERSION,
        task="ctqc",
        description=(
            "Image noise of contrast-enhanced cardiac CT per slice: the median absolute "
            "deviation of horizontally adjacent pixel differences in the central region "
            f"(rows // {MARGIN_DIVISOR} from each edge), x {MAD_TO_SD} / sqrt(2), as a "
            "standard deviation in HU. An analytic ONNX graph (tests/plugins/ctqc/make_model.py)."
        ),
        inputs=[TensorSpec(name="image", shape=["batch", 1, "rows", "columns"], dtype="float32")],
        outputs=[TensorSpec(name="noise_hu", shape=["batch"], dtype="float32")],
        preprocessing={"units": "HU", "batch_slices": 16, "margin_divisor": MARGIN_DIVISOR},
        training_data=(
            "None: an analytic graph built with onnx.helper, with no weights and no training. "
            "Not for clinical use."
        ),
        sha256=sha256,
        intended_use=(
            "A demonstration of a cardiogate task shipped as its own wheel: an image-quality "
            "check of CT angiography. Not for clinical use."
        ),
        clinical_use="not for clinical use",
        license="Apache-2.0",
        authors="cardiogate",
    )


def main() -> None:
    FOLDER.mkdir(parents=True, exist_ok=True)
    model_path = FOLDER / MODEL_FILE
    onnx.save(build_graph(), model_path)
    text = card(file_sha256(model_path)).model_dump_json(indent=2, exclude_defaults=False)
    (FOLDER / CARD_FILE).write_text(text + "\n")
    print(f"wrote {model_path} and {FOLDER / CARD_FILE}")


if __name__ == "__main__":
    main()
