"""One logger and one metrics sink for the whole library.

Log lines are fixed messages plus keys; the level, the service name and the metrics namespace come
from the POWERTOOLS_* variables the template sets. Logs go to stderr so that the `ssm-guard`
command's stdout stays clean for tables and JSON.
"""

from __future__ import annotations

import logging
import os
import sys

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "sagemaker-ssm-guard")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "SageMakerSsmGuard")

logger = Logger(service=SERVICE, logger_handler=logging.StreamHandler(sys.stderr))
metrics = Metrics(service=SERVICE, namespace=NAMESPACE)


def count(metric: str, value: float = 1) -> None:
    """Add one to a counter metric; flushed by the handler's `log_metrics`."""
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=value)
