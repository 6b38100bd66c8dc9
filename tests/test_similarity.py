"""featlab.similarity: the similarity map against an independent computation.

Reference: torchvision transforms (Resize + Normalize, no crop, for the picture; Resize +
CenterCrop for the query), a plain forward hook on the layer's module, the mean over positions,
torch.nn.functional.cosine_similarity and F.interpolate.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms as T

import featlab as fl


@pytest.fixture(scope="module")
def lite0():
    return fl.load_model("efficientnet_lite0", device="cpu")


def picture(name, width, height):
    """A sample picture resized to width × height (a size whose short side scales to 256 exactly)."""
    return fl.load_image(name).resize((width, height), Image.Resampling.BICUBIC)


def hooked(model, module_name, x):
    out = {}
    module = model.get_submodule(module_name)
    handle = module.register_forward_hook(lambda _m, _i, o: out.__setitem__("f", o.detach()))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return out["f"]


def reference_map(model, query, pic, layer, pooling="avg"):
    prep = fl.preprocess_for(model)
    mode = T.InterpolationMode(prep.interpolation)
    norm = T.Compose([T.ToTensor(), T.Normalize(prep.mean, prep.std)])
    module = fl.resolve_layer(model, layer)
    q = hooked(model, module, norm(T.CenterCrop(prep.crop)(T.Resize(prep.resize, mode)(query)))[None])
    q = q.mean(dim=(2, 3)) if pooling == "avg" else q.amax(dim=(2, 3))            # (1, C)
    f = hooked(model, module, norm(T.Resize(prep.resize, mode)(pic))[None])        # (1, C, h, w)
    s = F.cosine_similarity(f, q[:, :, None, None], dim=1)[:, None]                # (1, 1, h, w)
    s = F.interpolate(s, size=(pic.height, pic.width), mode="bilinear", align_corners=False)
    return s[0, 0].numpy()


@pytest.mark.parametrize("layer,pooling", [("head", "avg"), ("block6", "avg"), ("head", "max")])
def test_map_equals_hooked_cosine_upsampled(lite0, layer, pooling):
    query, pic = picture("chelsea", 300, 200), picture("astronaut", 200, 400)
    ours = fl.similarity_map(lite0, query, pic, layer=layer, pooling=pooling)
    ref = reference_map(lite0, query, pic, layer, pooling)
    assert ours.shape == ref.shape == (400, 200)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, atol=2e-4)
    assert ours.std() > 0.01  # not a constant map


def test_whole_picture_is_not_cropped(lite0):
    """A wide picture keeps its sides: the feature map is wider than tall, the map as wide as it."""
    pic = picture("coffee", 600, 200)
    x = fl.similarity.whole_picture(fl.preprocess_for(lite0), pic)
    assert tuple(x.shape) == (1, 3, 256, 768)
    assert fl.similarity_map(lite0, "chelsea", pic).shape == (200, 600)


def test_query_vector_equals_query_picture(lite0):
    """A stored row (the query pooled as extraction pools it) gives the same map as the picture."""
    query = picture("chelsea", 300, 200)
    row = fl.FeatureExtractor(lite0, "head", "avg").from_pictures([query])["head"][0]
    a = fl.similarity_map(lite0, query, "coffee")
    b = fl.similarity_map(lite0, row.numpy(), "coffee")
    np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("corner", [(40, 60), (250, 230)])
def test_map_peaks_inside_a_planted_copy_of_the_query(lite0, corner):
    """The query (a 128-pixel cat face) pasted on a brick wall: the map's peak lies on it."""
    cat = fl.load_image("chelsea").crop((80, 20, 240, 180)).resize((128, 128))
    wall = fl.load_image("brick").resize((420, 420))
    x0, y0 = corner
    wall.paste(cat, (x0, y0))
    s = fl.similarity_map(lite0, cat, wall)
    row, col = np.unravel_index(s.argmax(), s.shape)
    assert x0 <= col < x0 + 128 and y0 <= row < y0 + 128, (row, col)


def test_errors_name_the_fix(lite0):
    with pytest.raises(ValueError, match="pooling must be 'avg' or 'max'"):
        fl.similarity_map(lite0, "chelsea", "coffee", pooling="none")
    with pytest.raises(ValueError, match="has 10 values but layer"):
        fl.similarity_map(lite0, np.ones(10, np.float32), "coffee")
