"""Image formation of family B: contrast timing, X-ray exposure and the detector chain.

Per frame the line integral of attenuation ``A`` becomes the primary fluence
``N0 exp(-A)`` (photons per pixel), blurred by the focal spot; scatter adds a low-frequency
veil (``SF / (1 - SF)`` times a wide blur of the primary); the detected counts carry quantum
mottle, drawn as the Poisson quantile of one standard normal per pixel (Cornish-Fisher, so a
normal twin shares its noise exactly), are blurred by the detector, get electronic noise, and
are mapped to display values by a logarithmic or a gamma curve quantised to the stored bits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from .xa_heart import F64
from .xa_render import F32, upsample


@dataclass(frozen=True)
class Injection:
    """Iodine concentration (0-1 of the full dose) at the ostium over time: a raised-cosine
    wash-in, a plateau, an exponential wash-out; it reaches a point ``path_mm`` downstream
    ``path_mm / speed`` later."""

    start_s: float
    rise_s: float
    plateau_s: float
    washout_s: float
    speed_mm_s: float

    @classmethod
    def random(cls, rng: np.random.Generator, duration_s: float) -> Injection:
        """Timed so that most cines reach the plateau (allowing ~0.8 s for the iodine to
        reach the distal tree); some start with the injection under way."""
        rise = float(rng.uniform(0.3, 0.9))
        hi = max(-0.8 * rise, min(0.35 * duration_s, duration_s - rise - 0.8))
        lo = min(-rise - 0.3, hi)
        return cls(
            start_s=float(rng.uniform(lo, hi)),
            rise_s=rise,
            plateau_s=float(rng.uniform(1.0, 3.5)),
            washout_s=float(rng.uniform(0.4, 1.2)),
            speed_mm_s=float(rng.uniform(90.0, 220.0)),
        )

    def concentration(self, t: F64 | float) -> F64:
        """Concentration at the ostium at time(s) *t* (seconds from the first frame)."""
        x = np.asarray(t, dtype=np.float64) - self.start_s
        rise = 0.5 * (1 - np.cos(math.pi * np.clip(x / self.rise_s, 0.0, 1.0)))
        late = x - self.rise_s - self.plateau_s
        out: F64 = np.where(late > 0, np.exp(-np.maximum(late, 0) / self.washout_s), rise)
        return out

    def at(self, t: float, path_mm: F64) -> F64:
        """Concentration at points *path_mm* downstream of the ostium at time *t*."""
        return self.concentration(t - path_mm / self.speed_mm_s)


@dataclass(frozen=True)
class Exposure:
    """Dose, scatter, blur, noise and display curve of one run."""

    photons: float  # per pixel behind the chest, without the heart
    scatter_fraction: float
    focal_blur_px: float
    detector_blur_px: float
    electronic_noise: float  # counts (standard deviation)
    log_display: bool  # else a gamma curve
    gamma: float
    bits_stored: int
    low: float  # display value of the darkest expected signal (fraction of full scale)
    high: float  # display value of the brightest expected signal

    @classmethod
    def random(cls, rng: np.random.Generator, size: int) -> Exposure:
        """Cine doses from noisy to clean; 1024 matrices share the dose over 4x the pixels."""
        photons = float(np.exp(rng.uniform(math.log(300.0), math.log(5000.0))))
        photons *= (512.0 / size) ** 2
        bits = int(rng.choice([8, 10, 12], p=[0.4, 0.3, 0.3]))
        scale = size / 512.0
        return cls(
            photons=max(photons, 8.0),
            scatter_fraction=float(rng.uniform(0.2, 0.6)),
            focal_blur_px=float(rng.uniform(0.3, 0.9)) * scale,
            detector_blur_px=float(rng.uniform(0.4, 0.9)) * scale,
            electronic_noise=float(rng.uniform(0.5, 4.0)) * (512.0 / size) ** 2,
            log_display=bool(rng.random() < 0.7),
            gamma=float(rng.uniform(0.35, 0.6)),
            bits_stored=bits,
            low=float(rng.uniform(0.02, 0.15)),
            high=float(rng.uniform(0.78, 0.97)),
        )

    @property
    def max_value(self) -> int:
        """Largest stored value."""
        return (1 << self.bits_stored) - 1

    @property
    def dtype(self) -> type[np.uint8] | type[np.uint16]:
        """Bits Allocated 8 for 8-bit data, else 16."""
        return np.uint8 if self.bits_stored == 8 else np.uint16

    def signal(self, attenuation: F32, transmitted: F32 | None = None) -> F32:
        """Mean detected counts (primary plus scatter) of a line-integral image.

        *transmitted* (0-1 per pixel) models collimator shutters and vignetting.
        """
        primary = np.float32(self.photons) * np.exp(-attenuation)
        if transmitted is not None:
            primary *= transmitted
        if self.focal_blur_px > 0.05:
            primary = ndimage.gaussian_filter(
                primary, self.focal_blur_px, mode="nearest", truncate=3.0
            )
        veil = _wide_blur(primary) * np.float32(self.scatter_fraction / (1 - self.scatter_fraction))
        out: F32 = (primary + veil).astype(np.float32)
        return out

    def detect(self, mean: F32, z: F32, e: F32) -> F32:
        """Noisy detected counts of *mean*, with standard normals *z* (quantum) and *e*
        (electronic) of the same shape."""
        lam = np.maximum(mean, 0.0)
        counts = lam + np.sqrt(lam) * z + (z * z - 1.0) / 6.0
        counts = np.maximum(np.rint(counts), 0.0)
        blurred = ndimage.gaussian_filter(
            counts, self.detector_blur_px, mode="nearest", truncate=3.0
        )
        out: F32 = (blurred + np.float32(self.electronic_noise) * e).astype(np.float32)
        return out

    def display_curve(self, dark: float, bright: float) -> tuple[float, float]:
        """Gain and offset mapping counts *dark*..*bright* to ``low``..``high`` of full
        scale through the display curve (log or gamma)."""
        f0, f1 = (float(self._curve(np.array([v], dtype=np.float32))[0]) for v in (dark, bright))
        gain = (self.high - self.low) * self.max_value / max(f1 - f0, 1e-9)
        return gain, self.low * self.max_value - gain * f0

    def _curve(self, counts: F32) -> F32:
        c = np.maximum(counts, np.float32(0.5))
        out: F32 = np.log(c) if self.log_display else c ** np.float32(self.gamma)
        return out

    def to_stored(
        self, counts: F32, gain: float, offset: float
    ) -> NDArray[np.uint16] | NDArray[np.uint8]:
        """Display values in the stored range (MONOCHROME2: more counts, brighter)."""
        values = np.float32(offset) + np.float32(gain) * self._curve(counts)
        out: NDArray[np.uint16] | NDArray[np.uint8] = np.clip(
            np.rint(values), 0, self.max_value
        ).astype(self.dtype)
        return out


def _wide_blur(image: F32) -> F32:
    """A blur of about an eighth of the image width, computed at 1/8 resolution."""
    rows, cols = image.shape
    f = 8
    r8, c8 = -(-rows // f), -(-cols // f)
    padded = np.pad(image, ((0, r8 * f - rows), (0, c8 * f - cols)), mode="edge")
    small = padded.reshape(r8, f, c8, f).mean(axis=(1, 3))
    small = ndimage.gaussian_filter(small, max(r8, c8) / 9.0, mode="nearest")
    # block i's mean sits at pixel i * f + f / 2: pad one block, interpolate, cut
    small = np.pad(small, ((1, 1), (1, 1)), mode="edge")
    out = upsample(small, f, rows + f, cols + f)
    return out[f // 2 : f // 2 + rows, f // 2 : f // 2 + cols]
