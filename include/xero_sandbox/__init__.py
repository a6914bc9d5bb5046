"""A stateful, wire-compatible local Xero: identity, connections and the Accounting API on one origin."""
