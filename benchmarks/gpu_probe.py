"""Where the GPU ceilings are: ResNet-50 forward variants and nvJPEG decode rates (CUDA only).

    python benchmarks/gpu_probe.py

Random-init ResNet-50 (speed does not depend on the weights). Prints img/s of the full forward
pass at batch 256 and 512 in float32 / bfloat16 autocast, NCHW / channels_last, through
featlab's hooks (layer4 + pooling) and with bfloat16 weights; torch.compile (default mode) of
the trunk with its compile time; and torchvision's batched nvJPEG decode of 256 copies of one
640×480 / 1024×768 JPEG, alone and with the resize + crop featlab does after it.
Figures: benchmarks/README.md.
"""
import io
import sys
import time
from pathlib import Path

import torch
import torchvision
from PIL import ImageOps
from torchvision.io import ImageReadMode, decode_jpeg
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import featlab as fl  # noqa: E402
from featlab.extract import forward_layers  # noqa: E402

dev = torch.device("cuda")


def bench(fn, n_img: int, reps: int = 5) -> float:
    """img/s of fn (which handles n_img pictures), after one warm-up call."""
    fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    torch.cuda.synchronize()
    return n_img * reps / (time.perf_counter() - t)


def forward_variants(m) -> None:
    for bs in (256, 512):
        x = torch.randn(bs, 3, 224, 224, device=dev)
        xc = x.contiguous(memory_format=torch.channels_last)
        r = {}
        with torch.inference_mode(), torch.backends.cudnn.flags(enabled=True, benchmark=True):
            r["fp32 NCHW full"] = bench(lambda: m(x), bs)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                r["bf16 NCHW full"] = bench(lambda: m(x), bs)
            m.to(memory_format=torch.channels_last)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                r["bf16 CL full"] = bench(lambda: m(xc), bs)
                r["bf16 CL featlab layer4+pool"] = bench(
                    lambda: fl.pool(forward_layers(m, xc, ["layer4"])["layer4"].float()), bs)
            mb = m.to(dtype=torch.bfloat16)
            xb = xc.bfloat16()
            r["pure bf16 CL full"] = bench(lambda: mb(xb), bs)
            m.float().to(memory_format=torch.contiguous_format)
        print(bs, {k: round(v) for k, v in r.items()}, flush=True)


def compiled(m) -> None:
    """torch.compile ceiling (trunk up to layer4), compile time included in the report."""
    trunk = torch.nn.Sequential(*list(m.children())[:-2]).to(memory_format=torch.channels_last)
    xc = torch.randn(256, 3, 224, 224, device=dev).contiguous(memory_format=torch.channels_last)
    t = time.perf_counter()
    try:
        comp = torch.compile(trunk)
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
            comp(xc)
            torch.cuda.synchronize()
            tc = time.perf_counter() - t
            print(f"compile default: {tc:.1f} s to compile, "
                  f"{bench(lambda: comp(xc).mean((2, 3)), 256):.0f} img/s", flush=True)
    except Exception as e:
        print("compile failed", type(e).__name__, e)


def nvjpeg() -> None:
    img = fl.load_image("chelsea")
    for size in [(640, 480), (1024, 768)]:
        b = io.BytesIO()
        ImageOps.fit(img, size).save(b, "JPEG", quality=90)
        data = [torch.frombuffer(bytearray(b.getvalue()), dtype=torch.uint8) for _ in range(256)]

        def dec_resize(mode, short):
            ims = decode_jpeg(data, mode=ImageReadMode.RGB, device=dev)
            return TF.center_crop(TF.resize(torch.stack(ims), short, interpolation=mode, antialias=True), [224, 224])

        r = bench(lambda: decode_jpeg(data, mode=ImageReadMode.RGB, device=dev), 256)
        r2 = bench(lambda: dec_resize(InterpolationMode.BILINEAR, 232), 256)
        r3 = bench(lambda: dec_resize(InterpolationMode.BICUBIC, 256), 256)
        print(f"nvjpeg {size}: decode {r:.0f} img/s, +bilinear resize {r2:.0f}, +bicubic {r3:.0f}", flush=True)


if __name__ == "__main__":
    print(torch.__version__, torchvision.__version__, torch.cuda.get_device_name())
    model = fl.load_model("resnet50", pretrained=False, device=dev)
    forward_variants(model)
    compiled(model)
    nvjpeg()
