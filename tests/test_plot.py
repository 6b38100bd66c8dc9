import matplotlib

matplotlib.use("agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import featlab as fl  # noqa: E402


def test_top_channels_ranks_by_mean():
    f = torch.zeros(5, 4, 4)
    f[3] = 2.0
    f[1] = 1.0
    f[4, 0, 0] = 100.0  # mean 6.25: strongest
    assert fl.plot.top_channels(f, 3) == [4, 3, 1]
    assert fl.plot.top_channels(f[None], 10)[:3] == [4, 3, 1] and len(fl.plot.top_channels(f, 10)) == 5
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        fl.plot.top_channels(torch.zeros(4, 4))


def test_feature_grid_shows_the_chosen_channels():
    f = torch.rand(20, 6, 6)
    fig = fl.plot.feature_grid(f, k=10, ncols=5, title="t")
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert titles == [str(c) for c in fl.plot.top_channels(f, 10)]
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), f[int(titles[0])].numpy())
    plt.close(fig)


def test_overlay_resizes_heatmap_to_picture():
    ax = fl.plot.overlay("coffee", torch.rand(7, 7), title="x")
    picture, heat = ax.images
    assert heat.get_array().shape == picture.get_array().shape[:2] == (400, 600)
    with pytest.raises(ValueError, match="2-D"):
        fl.plot.overlay("coffee", torch.rand(2, 7, 7))
    plt.close("all")


def test_show_images():
    fig = fl.plot.show_images(["chelsea", "coffee", "rocket"], ["a", "b", "c"], ncols=2)
    assert [ax.get_title() for ax in fig.axes if ax.images] == ["a", "b", "c"]
    plt.close(fig)


def test_feature_explorer_builds_a_widget(lite0):
    w = fl.widgets.feature_explorer(lite0, "chelsea", ["stem", "head"])
    layer, channel = w.children[0].children
    assert layer.options == ("stem", "head") and channel.max == 31
    layer.value = "head"
    assert channel.max == 1279
    plt.close("all")


def test_grad_cam_explorer_offers_top_classes_and_layers(lite0):
    w = fl.widgets.grad_cam_explorer(lite0, "coffee", ["block5", "head"], topk=3)
    cls, layer = w.children[0].children
    assert [label for label, _ in cls.options][0].startswith("espresso")
    assert cls.value == fl.imagenet_labels().index("espresso") and layer.value == "head"
    layer.value = "block5"  # redraws without error
    plt.close("all")


def _static_picture(box):
    """The box's display for readers without a kernel: checks it and returns its picture."""
    import base64
    import io

    from PIL import Image

    data = box._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data         # JupyterLab: the live widget
    assert data["text/plain"].endswith(f"({fl.widgets.STATIC_NOTE})"), data["text/plain"]
    png = base64.b64decode(data["image/png"])
    assert png == box.picture                           # what it shows now (tests/test_browser.py: live)
    w, h = Image.open(io.BytesIO(png)).size
    assert w > 100 and h > 100
    return png


def test_explorers_carry_the_picture_they_show_for_readers_without_a_kernel(lite0):
    w = fl.widgets.feature_explorer(lite0, "chelsea", ["stem", "head"])
    first = _static_picture(w)
    w.children[0].children[1].value = 5                                # channel 5: another picture
    assert _static_picture(w) != first
    g = fl.widgets.grad_cam_explorer(lite0, "coffee", ["block5", "head"], topk=3)
    first = _static_picture(g)
    g.children[0].children[1].value = "block5"
    assert _static_picture(g) != first
