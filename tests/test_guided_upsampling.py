"""`upsample="guided"`: the model's map brought to the photo's size along the photo's edges (inference/upsampling.py),
and its option at every level (predictor, pipeline, evaluation)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hf_iis.inference.upsampling import UPSAMPLE_MODES, check_upsample, guided_upsample, upsample_to_original
from hf_iis.metrics.boundary_iou import boundary_iou

EDGE = 37  # the photo's step edge (column); the model's blurry 0.5 level sits 4 px left of it


def step_photo(size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    image = np.zeros((size, size, 3), dtype=np.uint8)
    image[:, EDGE:] = 200
    gt = np.zeros((size, size), dtype=bool)
    gt[:, EDGE:] = True
    return image, gt


def blurry_map(size: int = 64, stride: int = 4, centre: float = EDGE - 4.0) -> torch.Tensor:
    """(1, 1, size/stride, size/stride): a soft ramp across columns, its 0.5 level at `centre` photo pixels."""
    columns = (np.arange(size // stride) + 0.5) * stride - 0.5
    ramp = 1.0 / (1.0 + np.exp(-(columns - centre) / 3.0))
    return torch.tensor(np.tile(ramp, (size // stride, 1)), dtype=torch.float32)[None, None]


def test_guided_moves_a_blurry_edge_onto_the_photo_edge():
    image, gt = step_photo()
    maps = blurry_map()
    bilinear = F.interpolate(maps, size=gt.shape, mode="bilinear", align_corners=False)[0, 0].numpy() >= 0.5
    guided = guided_upsample(maps, image)[0, 0].numpy() >= 0.5
    assert (bilinear != gt).sum() == 4 * 64  # the ramp's 0.5 level is 4 columns off the edge
    assert (guided == gt).all()
    assert boundary_iou(guided, gt, dilation=2) == 1.0 > boundary_iou(bilinear, gt, dilation=2)


def test_guided_keeps_shape_dtype_range_and_batches():
    image, _ = step_photo()
    maps = torch.cat([blurry_map(), 1.0 - blurry_map()])
    out = guided_upsample(maps, image[:48])  # a non-square photo: (48, 64) from a (16, 16) map
    assert out.shape == (2, 1, 48, 64) and out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    single = guided_upsample(maps[1:], image[:48])
    assert torch.allclose(out[1:], single, atol=1e-5)  # each map of a batch on its own


def test_flat_maps_and_flat_photos_stay_put():
    image = np.full((32, 32, 3), 90, dtype=np.uint8)
    ones = torch.ones(1, 1, 16, 16)
    assert torch.allclose(guided_upsample(ones, image), torch.ones(1, 1, 32, 32), atol=1e-5)


def test_upsample_to_original_crops_the_padding():
    class Processor:  # the one method upsample_to_original calls for "bilinear"
        def map_to_original(self, maps, original_size, reshaped_size):
            h, w = reshaped_size
            return F.interpolate(maps[..., :h, :w], size=tuple(original_size), mode="bilinear", align_corners=False)

    image, gt = step_photo()
    canvas = torch.zeros(1, 1, 20, 20)  # the model frame: 16 x 16 image, padding elsewhere
    canvas[..., :16, :16] = blurry_map()
    for mode in UPSAMPLE_MODES:
        out = upsample_to_original(Processor(), canvas, (64, 64), (16, 16), mode, image)
        assert out.shape == (1, 1, 64, 64)
    with pytest.raises(ValueError, match="needs the photo"):
        upsample_to_original(Processor(), canvas, (64, 64), (16, 16), "guided", None)


@pytest.mark.parametrize("value", ["nearest", "Guided", "", None, 1, True])
def test_bad_modes_name_the_accepted_ones(value):
    with pytest.raises(ValueError, match="upsample must be one of 'bilinear', 'guided'"):
        check_upsample(value)


def test_bad_filter_settings_and_shapes_are_refused():
    image, _ = step_photo()
    with pytest.raises(ValueError, match="radius and eps"):
        guided_upsample(blurry_map(), image, eps=0.0)
    with pytest.raises(ValueError, match=r"\(N, 1, h, w\)"):
        guided_upsample(blurry_map()[0], image)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        guided_upsample(blurry_map(), image[..., 0])


def test_predictor_and_pipeline_take_the_option(tiny_checkpoint):
    from transformers import pipeline

    import hf_iis  # noqa: F401  (registers the task)
    from hf_iis.inference.predictor import SignedClickPredictor

    image, _ = step_photo(96)
    predictor = SignedClickPredictor.from_pretrained(tiny_checkpoint)
    predictor.set_image(image)
    plain = predictor.predict([(50, 30, 1)])
    guided = predictor.predict([(50, 30, 1)], upsample="guided")
    assert guided.probabilities.shape == plain.probabilities.shape == (96, 96)
    assert guided.probabilities.dtype == np.float32
    assert np.array_equal(plain.input_logits, guided.input_logits)  # the model frame is not touched
    with pytest.raises(ValueError, match="upsample must be one of"):
        predictor.predict([(50, 30, 1)], upsample="bicubic")

    with pytest.raises(ValueError, match="upsample must be one of"):
        pipeline("interactive-segmentation", model=str(tiny_checkpoint), upsample="bicubic")
    seg = pipeline("interactive-segmentation", model=str(tiny_checkpoint))
    out = seg(image, clicks=[(50, 30, 1)], upsample="guided")
    assert np.allclose(out["probabilities"], guided.probabilities)
    with pytest.raises(ValueError, match="upsample must be one of"):
        seg(image, clicks=[(50, 30, 1)], upsample="bicubic")


def test_evaluate_refuses_a_bad_mode_before_loading(tmp_path, capsys):
    from tests.conftest import load_script

    assert load_script("evaluate").main(["--model", "none", "--peers", "none", "--upsample", "bilinear,bicubic",
                                         "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("evaluate.py: error:") and "upsample must be one of 'bilinear', 'guided'" in err
    assert not (tmp_path / "o").exists()


def test_the_student_takes_the_option_too(tmp_path):
    import hf_iis
    from hf_iis.inference.predictors import predictor_for
    from hf_iis.models.student.modeling_signed_click_student import SignedClickStudentModel

    torch.manual_seed(0)
    model = SignedClickStudentModel(hf_iis.SignedClickStudentConfig.from_preset("tiny")).eval()
    predictor = predictor_for(model, hf_iis.SignedClickImageProcessor(size=64))
    image, _ = step_photo(96)
    predictor.set_image(image)
    plain = predictor.predict([(50, 30, 1)])
    guided = predictor.predict([(50, 30, 1)], upsample="guided")
    assert guided.probabilities.shape == plain.probabilities.shape == (96, 96)
    assert guided.probabilities.dtype == np.float32
    assert 0.0 <= guided.probabilities.min() and guided.probabilities.max() <= 1.0
    with pytest.raises(ValueError, match="upsample must be one of"):
        predictor.predict([(50, 30, 1)], upsample="bicubic")
