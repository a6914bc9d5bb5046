"""The push, CRM -> Xero (P1-P9): customers to Contacts, products to Items, confirmed orders to Draft invoices.

Modules, in the order a push uses them:
- `sqlfiles`: run the steps in `sql/push/` (diffs, mirror matching, order reads); the echo rule is `echo.py`;
- `payloads`: CRM rows -> Xero elements (pure): contacts (template defaults on creation only), items, invoices;
- `matching`: link a new customer to an existing Xero contact before creating one (pure; P9);
- `batches`: chunks of at most 50 and content-derived Idempotency-Keys (pure);
- `results`: Xero's per-element answers -> outcomes and readable reasons (pure);
- `ledger`: the database edge: batches persisted before sending, outcomes applied, history, errors;
- `run`: one push of customers or products for one connection (resume unfinished batches, diff, match, send);
- `orders`: `confirm_order` / `void_order` (the CRM side of the outbox) and processing the outbox.
"""
