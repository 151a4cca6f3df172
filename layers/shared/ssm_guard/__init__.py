"""sagemaker-ssm-guard: enforce, discover and guard SSM access to SageMaker endpoints."""

__version__ = "0.1.0"
