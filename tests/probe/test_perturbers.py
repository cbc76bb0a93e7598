"""Exact semantics of every built-in perturber, plus the contract every perturber keeps."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from probe import ProbeKeyError, ProbeTypeError, ProbeValueError
from probe import perturbers as P


@pytest.fixture
def images():
    gen = np.random.default_rng(3)
    return gen.normal(2.0, 1.5, size=(5, 12, 12, 3)).astype(np.float32)


ALL = [
    P.ColorJitter(0.3),
    P.GaussianBlur(1.2),
    P.GaussianNoise(0.5),
    P.AnnulusOcclusion(2.0, width=3),
    P.DiskOcclusion(3.0),
    P.Rotate90(1),
    P.FlipLeftRight(1),
    P.FlipUpDown(1),
    P.FromCallable(lambda x, v, rng: x + v, 1.0),
]


@pytest.mark.parametrize("pert", ALL, ids=lambda p: type(p).__name__)
def test_contract_pure_seeded_shape_dtype(pert, images):
    before = images.copy()
    a = pert(images, 11)
    b = pert(images, np.random.default_rng(11))
    np.testing.assert_array_equal(images, before)  # input untouched
    np.testing.assert_array_equal(a, b)  # same seed, same output
    assert a.shape == images.shape
    assert a.dtype == images.dtype
    assert a is not images


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int16])
@pytest.mark.parametrize("pert", ALL, ids=lambda p: type(p).__name__)
def test_apply_into_gives_the_bits_of_a_call(pert, images, dtype):
    """A sweep writes blocks into its batch buffer with apply_into: same bits as pert(images)."""
    x = (images * 10).astype(dtype)
    expected = pert(x, 4)
    dtype_out = pert.result_dtype(x.dtype) or expected.dtype
    assert expected.dtype == dtype_out
    out = np.zeros(x.shape, dtype_out)
    pert.apply_into(x, np.random.default_rng(4), out)
    np.testing.assert_array_equal(out, expected)


def test_blur_half_precision_is_filtered_in_float32(images):
    half = images.astype(np.float16)
    out = P.GaussianBlur(1.3)(half)
    assert out.dtype == np.float16
    ref = P.GaussianBlur(1.3)(half.astype(np.float32)).astype(np.float16)
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("cls", [P.ColorJitter, P.GaussianBlur, P.GaussianNoise, P.DiskOcclusion])
def test_zero_is_identity(cls, images):
    pert = cls(0)
    assert pert.is_identity
    np.testing.assert_array_equal(pert(images, 0), images)


def test_color_jitter_factors_per_image_and_band(images):
    out = P.ColorJitter(0.4)(images, 5)
    expected = np.random.default_rng(5).normal(1.0, 0.4, size=(5, 1, 1, 3))
    np.testing.assert_allclose(out, images * expected.astype(np.float32), rtol=1e-6)
    ratio = out / images
    # One factor per (image, band): constant over pixels, different across bands.
    np.testing.assert_allclose(ratio, ratio[:, :1, :1, :] * np.ones_like(ratio), rtol=1e-5)
    assert np.unique(np.round(ratio[:, 0, 0, :], 6)).size == 15


def test_blur_matches_scipy_per_band(images):
    out = P.GaussianBlur(1.7)(images)
    for i in range(images.shape[0]):
        for c in range(images.shape[3]):
            ref = ndimage.gaussian_filter(images[i, :, :, c], 1.7, mode="reflect", truncate=4.0)
            np.testing.assert_allclose(out[i, :, :, c], ref, rtol=1e-5, atol=1e-5)


def test_blur_matches_independent_fft_convolution():
    """A point source blurred in a large stamp is the sampled 2-D Gaussian (independent check)."""
    n, sigma = 65, 2.0
    img = np.zeros((1, n, n, 1))
    img[0, 32, 32, 0] = 1.0
    out = P.GaussianBlur(sigma, mode="constant", truncate=8.0)(img)[0, :, :, 0]
    x = np.arange(n) - 32
    g1 = np.exp(-0.5 * (x / sigma) ** 2)
    g1 /= g1.sum()
    np.testing.assert_allclose(out, np.outer(g1, g1), atol=1e-12)
    # and via FFT of a wrapped kernel for an arbitrary image
    gen = np.random.default_rng(0)
    arr = gen.normal(size=(1, n, n, 1))
    wrapped = P.GaussianBlur(sigma, mode="wrap", truncate=8.0)(arr)[0, :, :, 0]
    kernel = np.zeros((n, n))
    kernel[np.ix_(x % n, x % n)] = np.outer(g1, g1)
    fft = np.real(np.fft.ifft2(np.fft.fft2(arr[0, :, :, 0]) * np.fft.fft2(kernel)))
    np.testing.assert_allclose(wrapped, fft, atol=1e-10)


def test_blur_does_not_mix_bands_or_images():
    img = np.zeros((2, 9, 9, 2), np.float32)
    img[0, 4, 4, 0] = 1.0
    out = P.GaussianBlur(1.0)(img)
    assert out[0, :, :, 1].max() == 0
    assert out[1].max() == 0


def test_noise_is_normalised(images):
    sigma = 0.7
    out = P.GaussianNoise(sigma)(images, 9)
    x = images.astype(np.float64)
    m = x.mean(axis=(1, 2), keepdims=True)
    s = x.std(axis=(1, 2), keepdims=True)
    e = np.random.default_rng(9).standard_normal(size=images.shape, dtype=np.float32)
    literal = ((x - m) / s + sigma * e) * s + m  # standardise, add N(0, sigma), invert
    np.testing.assert_allclose(out, literal, rtol=1e-5, atol=1e-5)


def test_noise_output_std_grows_as_sqrt_one_plus_sigma_squared():
    gen = np.random.default_rng(1)
    big = (gen.normal(size=(4, 128, 128, 2)) * 3.0 + 10).astype(np.float32)
    out = P.GaussianNoise(2.0)(big, 0).astype(np.float64)
    ratio = out.std(axis=(1, 2)) / big.astype(np.float64).std(axis=(1, 2))
    np.testing.assert_allclose(ratio, np.sqrt(1 + 2.0**2), rtol=0.03)


def test_noise_leaves_constant_band_unchanged():
    img = np.full((1, 4, 4, 1), 3.0, np.float32)
    np.testing.assert_array_equal(P.GaussianNoise(5.0)(img, 0), img)


def test_annulus_mask_exact():
    pert = P.AnnulusOcclusion(2.0, width=1.5)
    h, w = 9, 8
    rows, cols = np.mgrid[0:h, 0:w]
    d = np.hypot(rows - (h - 1) / 2, cols - (w - 1) / 2)
    expected = (d >= 2.0) & (d < 3.5)
    np.testing.assert_array_equal(pert.mask(h, w), expected)
    img = np.ones((2, h, w, 3), np.float32)
    out = pert(img)
    assert np.all(out[:, expected, :] == 0)
    assert np.all(out[:, ~expected, :] == 1)


def test_disk_mask_exact_and_default_annulus_width():
    h = w = 7
    d = np.hypot(*np.mgrid[0:h, 0:w] - 3.0)
    np.testing.assert_array_equal(P.DiskOcclusion(2.0).mask(h, w), d < 2.0)
    assert P.AnnulusOcclusion(1.0).width == 5.0
    img = np.ones((1, h, w, 2))
    out = P.DiskOcclusion(1.0)(img)
    assert out[0, 3, 3, 0] == 0
    assert out[0, 3, 4, 0] == 1


def test_rotations_and_flips(images):
    np.testing.assert_array_equal(P.Rotate90(1)(images), np.rot90(images, 1, axes=(1, 2)))
    np.testing.assert_array_equal(P.Rotate90(-1)(images), np.rot90(images, 3, axes=(1, 2)))
    assert P.Rotate90(4).is_identity
    assert not P.Rotate90(2).is_identity
    np.testing.assert_array_equal(P.FlipLeftRight(1)(images), images[:, :, ::-1, :])
    np.testing.assert_array_equal(P.FlipUpDown(1)(images), images[:, ::-1, :, :])
    np.testing.assert_array_equal(P.FlipUpDown(0)(images), images)
    with pytest.raises(ProbeValueError, match="square"):
        P.Rotate90(1)(np.zeros((1, 4, 5, 1)))
    with pytest.raises(ProbeValueError, match="whole number"):
        P.Rotate90(0.5)
    with pytest.raises(ProbeValueError, match="flip"):
        P.FlipLeftRight(2)


def test_user_callable_receives_value_and_generator(images):
    seen = {}

    def f(x, value, rng):
        seen["value"], seen["rng"] = value, rng
        return x * value

    out = P.FromCallable(f, 2.5)(images, 0)
    assert seen["value"] == 2.5
    assert isinstance(seen["rng"], np.random.Generator)
    np.testing.assert_allclose(out, images * 2.5)
    with pytest.raises(ProbeValueError, match="keep the shape"):
        P.FromCallable(lambda x, v, r: x[:, :2], 1.0)(images)


@pytest.mark.parametrize(
    "call",
    [
        lambda: P.GaussianBlur(-1.0),
        lambda: P.ColorJitter(float("nan")),
        lambda: P.GaussianNoise(-0.1),
        lambda: P.DiskOcclusion(-2),
        lambda: P.AnnulusOcclusion(1.0, width=0),
        lambda: P.GaussianBlur(1.0, mode="bogus"),
    ],
)
def test_bad_values_raise_naming_argument(call):
    with pytest.raises(ProbeValueError, match=r"sigma|radius|width|mode"):
        call()


def test_non_4d_images_raise():
    with pytest.raises(ProbeTypeError, match="4-D"):
        P.GaussianBlur(1.0)(np.zeros((3, 3)))


def test_registry_and_by_name():
    assert P.by_name("blur") is P.GaussianBlur
    assert P.by_name("GaussianNoise") is P.GaussianNoise
    assert set(P.registry()) >= {"color", "blur", "noise", "annulus", "disk", "rot90"}
    with pytest.raises(ProbeKeyError, match="unknown perturber 'sharpen'"):
        P.by_name("sharpen")


def test_repr_shows_construction_and_params_are_json_ready():
    assert repr(P.GaussianBlur(1.5)) == "GaussianBlur(sigma=1.5, mode='reflect', truncate=4.0)"
    assert P.AnnulusOcclusion(3.0).params() == {
        "class": "AnnulusOcclusion",
        "radius": 3.0,
        "width": 5.0,
    }
    assert P.GaussianBlur(2.0).value == 2.0
