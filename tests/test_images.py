import io

import numpy as np
import pytest
import torch
from PIL import Image

import featlab as fl
from featlab.images import check_batch


def test_every_sample_loads_as_rgb():
    names = fl.sample_images()
    assert {"chelsea", "coffee", "astronaut", "rocket", "china", "flower", "brick"} <= set(names)
    for name in names:
        img = fl.load_image(name)
        assert img.mode == "RGB" and min(img.size) >= 64, name


def test_grayscale_file_becomes_three_equal_channels(tmp_path):
    a = (np.arange(64 * 48) % 256).astype(np.uint8).reshape(48, 64)
    Image.fromarray(a, "L").save(tmp_path / "g.png")
    rgb = np.asarray(fl.load_image(tmp_path / "g.png"))
    assert rgb.shape == (48, 64, 3)
    for c in range(3):
        np.testing.assert_array_equal(rgb[..., c], a)


def test_rgba_transparent_pixels_become_white(tmp_path):
    a = np.zeros((10, 10, 4), np.uint8)
    a[..., 0] = 200          # red everywhere
    a[:5, :, 3] = 255        # top half opaque, bottom half fully transparent
    Image.fromarray(a, "RGBA").save(tmp_path / "a.png")
    rgb = np.asarray(fl.load_image(tmp_path / "a.png"))
    np.testing.assert_array_equal(rgb[0, 0], [200, 0, 0])
    np.testing.assert_array_equal(rgb[9, 9], [255, 255, 255])


def test_palette_with_transparency(tmp_path):
    img = Image.new("P", (8, 8), 0)
    img.putpalette([0, 0, 255] + [0, 255, 0] * 255)
    img.putpixel((0, 0), 1)
    img.info["transparency"] = 0
    img.save(tmp_path / "p.png", transparency=0)
    rgb = np.asarray(fl.load_image(tmp_path / "p.png"))
    np.testing.assert_array_equal(rgb[0, 0], [0, 255, 0])        # opaque palette entry
    np.testing.assert_array_equal(rgb[5, 5], [255, 255, 255])    # transparent index -> white


def test_16bit_is_scaled_not_clipped(tmp_path):
    a = np.array([[0, 257 * 128, 65535]], dtype=np.uint16).repeat(4, 0)
    Image.fromarray(a).save(tmp_path / "d.png")
    assert Image.open(tmp_path / "d.png").mode.startswith("I")
    naive = np.asarray(Image.open(tmp_path / "d.png").convert("RGB"))
    assert naive[0, 1, 0] == 255          # PIL alone clips mid-grey to white
    rgb = np.asarray(fl.load_image(tmp_path / "d.png"))
    assert rgb[0].tolist() == [[0, 0, 0], [128, 128, 128], [255, 255, 255]]
    np.testing.assert_array_equal(np.asarray(fl.load_image(a))[0, :, 0], [0, 128, 255])


def test_exif_orientation_is_applied(tmp_path):
    a = np.zeros((20, 40, 3), np.uint8)
    a[:, :20] = 255  # left half white
    img = Image.fromarray(a)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    img.save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=95)
    out = np.asarray(fl.load_image(tmp_path / "r.jpg"))
    assert out.shape == (40, 20, 3)
    assert out[:20].mean() > 200 and out[20:].mean() < 50   # white half is now on top


@pytest.mark.parametrize("content,match", [
    (b"", "empty"),
    (b"hello, I am text", "not an image"),
])
def test_bad_files_have_clear_errors(tmp_path, content, match):
    p = tmp_path / "x.jpg"
    p.write_bytes(content)
    with pytest.raises(fl.ImageError, match=match):
        fl.load_image(p)


def test_truncated_file(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    (tmp_path / "t.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(fl.ImageError, match="corrupt or truncated"):
        fl.load_image(tmp_path / "t.jpg")


def test_missing_file_and_unknown_sample(tmp_path):
    with pytest.raises(fl.ImageError, match="no such image file"):
        fl.load_image(tmp_path / "nope.png")
    with pytest.raises(fl.ImageError, match="samples: chelsea"):
        fl.load_image("chelsie")


def test_arrays():
    np.testing.assert_array_equal(np.asarray(fl.load_image(np.ones((4, 4), bool)))[0, 0], [255] * 3)
    np.testing.assert_array_equal(np.asarray(fl.load_image(np.full((4, 4, 3), 0.5)))[0, 0], [128] * 3)
    with pytest.raises(fl.ImageError, match="channels-first"):
        fl.load_image(np.zeros((3, 32, 32), np.uint8))
    with pytest.raises(fl.ImageError, match=r"\[0, 1\]"):
        fl.load_image(np.full((4, 4), 3.0))


@pytest.mark.parametrize("name", ["resnet18", "vgg16"])
def test_torchvision_preprocessing_matches_weights_transforms(name):
    from torchvision.models import get_model_weights
    ref = get_model_weights(name)["IMAGENET1K_V1"].transforms()
    img = fl.load_image("astronaut")
    ours = fl.preprocess_for(name)(img)
    assert ours.shape == (1, 3, 224, 224)
    torch.testing.assert_close(ours[0], ref(img), atol=1e-5, rtol=0)


def test_lite0_preprocessing_matches_timm_eval_transform():
    import timm
    from timm.data import create_transform, resolve_data_config
    cfg = resolve_data_config({}, model=timm.create_model("tf_efficientnet_lite0", pretrained=False))
    ref = create_transform(**cfg, is_training=False)
    img = fl.load_image("coffee")
    ours = fl.preprocess_for("efficientnet_lite0")(img)
    assert fl.preprocess_for("efficientnet_lite0").mean == (0.5, 0.5, 0.5)
    torch.testing.assert_close(ours[0], ref(img), atol=1e-5, rtol=0)


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_crop_box_resize_equals_resize_then_crop(interpolation):
    """Preprocess resizes only the crop box; torchvision resizes all, then crops. Same pixels up
    to rounding: at most 1 of 255, on under 2 % of them (a box off by one pixel differs on
    most pixels, by up to tens of levels)."""
    from torchvision import transforms as T
    prep = fl.Preprocess(256, 224, (0.5,) * 3, (0.5,) * 3, interpolation)
    ref = T.Compose([T.Resize(256, interpolation=T.InterpolationMode(interpolation)), T.CenterCrop(224),
                     T.PILToTensor()])
    base = fl.load_image("rocket")                                  # 640 x 427
    pictures = [fl.load_image(n) for n in fl.sample_images()] + [
        base.transpose(Image.Transpose.ROTATE_90),                  # portrait
        base.resize((1024, 768)), base.resize((333, 257)), base.resize((256, 300)),  # short side = 256
        base.resize((225, 1000))]                                   # upsampled, very tall
    for img in pictures:
        a, b = ref(img).int(), prep.to_uint8(img).int()
        assert b.shape == (3, 224, 224) and b.dtype == torch.int32
        assert (a - b).abs().max() <= 1, img.size
        assert (a != b).float().mean() < 0.02, img.size
    small = fl.Preprocess(200, 224, (0.5,) * 3, (0.5,) * 3, interpolation)  # resize < crop: padded
    assert torch.equal(small.to_uint8(base), T.Compose([T.Resize(200, interpolation=T.InterpolationMode(
        interpolation)), T.CenterCrop(224), T.PILToTensor()])(base))


def test_denormalize_roundtrip():
    p = fl.preprocess_for("resnet18")
    x = p("chelsea")
    assert 0.0 <= float(p.denormalize(x).min()) and float(p.denormalize(x).max()) <= 1.0
    raw = torch.from_numpy(np.array(fl.load_image("chelsea"))).float()
    assert p.denormalize(x).mean().item() == pytest.approx(raw.mean().item() / 255, abs=0.03)


@pytest.mark.parametrize("shape,dtype,match", [
    ((2, 224, 224, 3), torch.float32, r"permute\(0, 3, 1, 2\)"),
    ((3, 224, 224), torch.float32, r"unsqueeze\(0\)"),
    ((2, 1, 224, 224), torch.float32, "3 input channels"),
    ((2, 3, 224, 224), torch.uint8, "preprocess"),
    ((224, 224), torch.float32, "4-D"),
])
def test_check_batch_errors(shape, dtype, match):
    with pytest.raises(ValueError, match=match):
        check_batch(torch.zeros(shape, dtype=dtype), 3)
