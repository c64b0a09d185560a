"""Batch Normalization from first principles: reference code for the course notebooks."""

from course.batchnorm import batchnorm_backward, batchnorm_backward_alt, batchnorm_forward

__all__ = ["batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt"]
