"""Widely used Xero clients ("peers") run against the sandbox: Singer's tap-xero (``peers.tap_xero``)."""
