"""Predict, calibrate (tier thresholds) and export: using a trained checkpoint on new images."""

from finegrain.predict.calibrate import calibrate, calibrate_checkpoint, stored_thresholds
from finegrain.predict.export import export, export_model
from finegrain.predict.predict import Predictor, collect_images, predict, write_predictions
from finegrain.predict.tiers import (
    TIERS,
    Thresholds,
    fit_thresholds,
    sensitivity_threshold,
    tier,
    tiers,
    youden_threshold,
)

__all__ = [
    "TIERS",
    "Predictor",
    "Thresholds",
    "calibrate",
    "calibrate_checkpoint",
    "collect_images",
    "export",
    "export_model",
    "fit_thresholds",
    "predict",
    "sensitivity_threshold",
    "stored_thresholds",
    "tier",
    "tiers",
    "write_predictions",
    "youden_threshold",
]
