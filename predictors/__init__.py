"""Accuracy predictors over search spaces: encodings, XGBoost and GP regressors with uncertainty, metrics, CV."""

from .auto import AutoPredictor
from .base import (
    NotFittedError,
    Predictor,
    create_predictor,
    list_predictors,
    load_predictor,
    register_predictor,
)
from .encodings import Encoding, SignalEncoding, Signals, cost_signals, get_encoding, list_encodings, register_encoding
from .fitting import fit_predictors
from .gp import GPPredictor
from .intervals import accuracy_interval, bootstrap_interval, wilson_interval
from .latency import LatencyPredictor, LatencyRegressor
from .metrics import (
    CVResult,
    coverage,
    cross_validate,
    kendall_tau,
    learning_curve,
    precision_at_k,
    rank_agreement,
    rmse,
    score_predictions,
    spearman,
    std_error_spearman,
)
from .synthetic import make_objective
from .xgb import XGBPredictor

__all__ = [
    "AutoPredictor", "accuracy_interval", "bootstrap_interval", "wilson_interval", "CVResult", "Encoding",
    "GPPredictor", "LatencyPredictor", "SignalEncoding", "Signals", "cost_signals", "LatencyRegressor", "NotFittedError", "Predictor", "XGBPredictor", "coverage",
    "create_predictor", "cross_validate", "fit_predictors", "get_encoding", "kendall_tau", "learning_curve", "list_encodings",
    "list_predictors", "load_predictor", "make_objective", "precision_at_k", "rank_agreement", "register_encoding",
    "register_predictor", "rmse", "score_predictions", "spearman", "std_error_spearman",
]
