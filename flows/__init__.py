"""Prefect flows. Importing this package (before Prefect itself) turns telemetry and hub access off
for the flow and every stage it starts; see s2sflow/offline.py."""

from s2sflow import offline

offline.apply(offline.FLOW_DEFAULTS)
