"""Inference with a trained checkpoint: predict, class activation maps, calibrate (tier
thresholds) and export."""

from finegrain.predict.calibrate import calibrate, calibrate_checkpoint, stored_thresholds
from finegrain.predict.cam import cam_images, compute_cam
from finegrain.predict.export import export, export_model
from finegrain.predict.images import collect_images
from finegrain.predict.predict import predict, write_predictions
from finegrain.predict.predictor import Predictor
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
    "cam_images",
    "collect_images",
    "compute_cam",
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
