"""What a run cost: parameters trained, memory held, time spent (metrics.json's ``cost`` and the card)."""

from __future__ import annotations

from typing import Any

import torch
from accelerate import Accelerator

__all__ = ["cost_report", "peak_rss_bytes", "EnergyMeter", "check_energy_country"]


def peak_rss_bytes() -> int:
    """This process's peak resident memory (Linux reports kilobytes, macOS bytes)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def cost_report(
    built: Any, accelerator: Accelerator, seconds: float, steps: int, samples_per_step: int
) -> dict[str, Any]:
    """What the run cost: parameters trained, memory held, time spent (the card and metrics.json show it)."""
    model = accelerator.unwrap_model(built.model)
    trainable, total = (int(n) for n in model.get_nb_trainable_parameters())
    report: dict[str, Any] = {
        "trainable_params": trainable,
        "total_params": total,
        "trainable_percent": round(100 * trainable / max(total, 1), 4),
        "model_memory_footprint_bytes": built.provenance.get("memory_footprint_bytes"),
        "peak_rss_bytes": peak_rss_bytes(),
        "train_seconds": round(seconds, 2),
        "train_samples_per_second": round(steps * samples_per_step / seconds, 2) if seconds > 0 else None,
        "device": str(accelerator.device.type),
        "num_processes": accelerator.num_processes,
        "mixed_precision": str(accelerator.mixed_precision),
    }
    if accelerator.device.type == "cuda":
        report["peak_cuda_memory_bytes"] = int(torch.cuda.max_memory_allocated(accelerator.device))
    return report


class EnergyMeter:
    """codecarbon's offline tracker around the training loop (extra ``[energy]``).

    Energy is an estimate (RAPL counters where readable, else the CPU's TDP times its load, plus RAM and
    NVML for GPUs). CO2 needs the grid's carbon intensity, a per-country figure, so it is reported only
    when ``training.energy_country`` is set. Nothing here may fail a run: a tracker that cannot start or
    read its counters gives ``energy_kwh: null`` with the reason. Multi-process runs measure on the main
    process in machine mode (all processes), single-process runs in process mode.
    """

    def __init__(self, enabled: bool, country: str | None, main_process: bool, num_processes: int) -> None:
        self.country = country
        self.tracker: Any = None
        self.reason: str | None = None if enabled else "training.track_energy is off"
        if not enabled or not main_process:
            return
        try:
            from codecarbon import OfflineEmissionsTracker
        except ImportError:
            self.reason = "codecarbon not installed: pip install 'peft-recipes[energy]'"
            return
        import logging

        logging.getLogger("codecarbon").setLevel(logging.ERROR)  # after import: it sets its own level
        try:
            self.tracker = OfflineEmissionsTracker(
                country_iso_code=country,
                save_to_file=False,
                log_level="error",
                tracking_mode="process" if num_processes == 1 else "machine",
                measure_power_secs=5,
            )
            self.tracker.start()
        except Exception as exc:  # noqa: BLE001 - a power counter must never stop training
            self.tracker, self.reason = None, f"tracker failed to start: {exc}"

    def stop(self) -> dict[str, Any]:
        """The energy section of the cost report (``None`` values with a ``note`` when not measured)."""
        report: dict[str, Any] = {"energy_kwh": None, "co2_kg": None, "country_iso_code": self.country}
        if self.tracker is None:
            return {**report, "note": self.reason}
        try:
            self.tracker.stop()
            data = self.tracker.final_emissions_data
        except Exception as exc:  # noqa: BLE001
            return {**report, "note": f"tracker failed to read its counters: {exc}"}
        from importlib.metadata import version

        report.update(
            {
                "energy_kwh": float(data.energy_consumed),
                "cpu_energy_kwh": float(data.cpu_energy),
                "gpu_energy_kwh": float(data.gpu_energy),
                "ram_energy_kwh": float(data.ram_energy),
                "cpu_power_w": float(data.cpu_power),
                "co2_kg": float(data.emissions) if self.country else None,
                "tracker": f"codecarbon {version('codecarbon')} offline ({data.tracking_mode} mode)",
            }
        )
        if not self.country:
            report["note"] = "CO2 not estimated: set training.energy_country (ISO 3166 alpha-3)"
        return report


def check_energy_country(country: str | None) -> None:
    """Refuse a country code codecarbon has no grid data for, before any training."""
    if country is None:
        return
    try:
        from codecarbon.input import DataSource
    except ImportError:
        return  # the run will say energy is not measured
    known = DataSource().get_global_energy_mix_data()
    if country not in known:
        from adapters.errors import AdaptersUserError

        raise AdaptersUserError(
            f"no grid carbon data for {country!r} (ISO 3166 alpha-3, e.g. DEU, USA, FRA)",
            where="training.energy_country",
        )
