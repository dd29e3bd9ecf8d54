"""Parses OpenMetrics text from stdin with prometheus_client's strict parser
and prints every sample as a JSON line: [name, labels, value]. A parse error
exits non-zero with the parser's message."""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

for family in text_string_to_metric_families(sys.stdin.read()):
    for sample in family.samples:
        print(json.dumps([sample.name, sample.labels, sample.value]))
