"""Sampling loops over diffusers schedulers (k-diffusion-style callbacks) and guidance hooks."""
from .sampler import (DEFAULT_CFG, DEFAULT_DENOISE, DEFAULT_SCHEDULER, DEFAULT_STEPS, DEFAULT_TEMPERATURE,
                      DEFAULT_TEMPERATURE_STOP_T, SCHEDULERS, add_sampler_arguments, make_scheduler, output_from_x0,
                      sample, sampler_options, x0_from_output)

__all__ = ["DEFAULT_CFG", "DEFAULT_DENOISE", "DEFAULT_SCHEDULER", "DEFAULT_STEPS", "DEFAULT_TEMPERATURE",
           "DEFAULT_TEMPERATURE_STOP_T", "SCHEDULERS", "add_sampler_arguments", "make_scheduler", "sample",
           "sampler_options", "x0_from_output", "output_from_x0"]
