"""fl.device() and $FEATLAB_DEVICE: the device asked for, or a clear error, never a quiet CPU."""
import pytest
import torch

import featlab as fl


def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


def gpus(monkeypatch, n):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: n)


@pytest.mark.parametrize("value", ["cpu", " cpu ", "cpu:0"])
def test_cpu_is_always_honoured(monkeypatch, value):
    gpus(monkeypatch, 2)                                   # even beside a GPU
    monkeypatch.setenv("FEATLAB_DEVICE", value)
    assert fl.device() == torch.device(value.strip())


def test_default_is_cuda_when_present_else_cpu(monkeypatch):
    monkeypatch.delenv("FEATLAB_DEVICE", raising=False)
    gpus(monkeypatch, 1)
    assert fl.device() == torch.device("cuda")
    no_gpu(monkeypatch)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert fl.device() == torch.device("cpu")
    monkeypatch.setenv("FEATLAB_DEVICE", "")               # empty = unset
    assert fl.device() == torch.device("cpu")


@pytest.mark.parametrize("cuda, n, mps, expected", [
    (False, 0, False, "cpu"),
    (False, 0, True, "mps"),
    (True, 1, False, "cuda"),
    (True, 2, True, "cuda"),   # a CUDA GPU comes before MPS
])
def test_default_follows_the_table(monkeypatch, cuda, n, mps, expected):
    """The documented order (cuda if present, else mps, else cpu), as a table of answers."""
    monkeypatch.delenv("FEATLAB_DEVICE", raising=False)
    (gpus(monkeypatch, n) if cuda else no_gpu(monkeypatch))
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert fl.device() == torch.device(expected)


@pytest.mark.parametrize("value", ["cuda", "cuda:0", "cuda:1"])
def test_cuda_without_a_gpu_is_an_error_not_the_cpu(monkeypatch, value):
    no_gpu(monkeypatch)
    monkeypatch.setenv("FEATLAB_DEVICE", value)
    with pytest.raises(ValueError, match=r"FEATLAB_DEVICE='cuda(:\d)?' asks for a CUDA GPU, but PyTorch sees none") as e:
        fl.device()
    assert "FEATLAB_DEVICE to cpu" in str(e.value)         # says how to fix it
    with pytest.raises(ValueError, match="asks for a CUDA GPU"):
        fl.load_model("resnet18", pretrained=False)        # before building anything


def test_cuda_on_this_machine(monkeypatch):
    """Unpatched: on a machine without a GPU, cuda is refused; with one, it is used."""
    monkeypatch.setenv("FEATLAB_DEVICE", "cuda")
    if torch.cuda.is_available():
        assert fl.device() == torch.device("cuda")
    else:
        with pytest.raises(ValueError, match="sees none"):
            fl.device()


def test_cuda_index_must_exist(monkeypatch):
    gpus(monkeypatch, 2)
    for value in ["cuda", "cuda:0", "cuda:1"]:
        monkeypatch.setenv("FEATLAB_DEVICE", value)
        assert fl.device() == torch.device(value)
    monkeypatch.setenv("FEATLAB_DEVICE", "cuda:2")
    with pytest.raises(ValueError, match=r"asks for GPU 2, but PyTorch sees 2 GPU\(s\): cuda:0 to cuda:1"):
        fl.device()


def test_mps_only_where_pytorch_offers_it(monkeypatch):
    monkeypatch.setenv("FEATLAB_DEVICE", "mps")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ValueError, match="MPS"):
        fl.device()
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert fl.device() == torch.device("mps")
    monkeypatch.setenv("FEATLAB_DEVICE", "mps:1")
    with pytest.raises(ValueError, match="mps:0"):
        fl.device()


@pytest.mark.parametrize("value", ["gpu", "CUDA", "cuda:x", "meta", "xla", "0"])
def test_unknown_values_name_the_variable_and_the_choices(monkeypatch, value):
    gpus(monkeypatch, 1)
    monkeypatch.setenv("FEATLAB_DEVICE", value)
    with pytest.raises(ValueError) as e:
        fl.device()
    msg = str(e.value)
    assert f"FEATLAB_DEVICE={value!r} is not a device featlab can use" in msg
    assert "cpu, cuda, cuda:N or mps" in msg


def test_an_explicit_device_argument_wins_over_the_variable(monkeypatch):
    monkeypatch.setenv("FEATLAB_DEVICE", "gpu")            # would be an error if it were read
    m = fl.load_model("resnet18", pretrained=False, device="cpu")
    assert next(m.parameters()).device == torch.device("cpu")
