#!/usr/bin/python3
"""Reads Prometheus text on stdin with the reference client's parser (fails
on anything it cannot parse) and prints 'NAME{labels} value' lines, so shell
tests can assert on samples."""
import sys

from prometheus_client.parser import text_string_to_metric_families

for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        print(f"{s.name}{{{labels}}} {s.value:g}")
