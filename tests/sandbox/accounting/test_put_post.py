"""PUT creates; POST creates or updates (docs/SANDBOX.md, "Writes").

Source: Xero, "HTTP PUT and POST methods" (http://blog.xero.com/developer/api-overview/http-put-and-post/): "A PUT
method will create new data in Xero, whereas a POST will either create new data or update existing data"; an id
given must exist (Xero's API change log, "If contact id is provided that contact must exist"); contact names are
unique across active contacts (https://developer.xero.com/documentation/api/accounting/contacts).
"""

from __future__ import annotations

import uuid


def _contact(org, **fields):
    (result,) = org.create_contacts([{"Name": "Existing Ltd", "ContactNumber": "C-1", **fields}])
    assert result.ok, result.errors
    return result.record


def _errors(response):
    assert response.status_code == 400, response.text
    return [e["Message"] for el in response.json()["Elements"] for e in el["ValidationErrors"]]


def test_put_creates_but_never_updates(org, api):
    existing = _contact(org)
    response = api.put(
        "/Contacts",
        json={"Contacts": [{"ContactID": existing["ContactID"], "EmailAddress": "x@example.com"}]},
    )
    assert any("PUT only creates" in message for message in _errors(response))
    assert org.contacts.get(existing["ContactID"]).get("EmailAddress") is None
    created = api.put("/Contacts", json={"Contacts": [{"Name": "New Ltd"}]})
    assert created.status_code == 200 and len(org.contacts) == 2


def test_post_updates_by_id_or_number_and_creates_otherwise(org, api):
    existing = _contact(org)
    by_id = api.post(
        "/Contacts", json={"Contacts": [{"ContactID": existing["ContactID"], "FirstName": "Ann"}]}
    )
    assert by_id.status_code == 200 and org.contacts.get(existing["ContactID"])["FirstName"] == "Ann"
    by_number = api.post("/Contacts", json={"Contacts": [{"ContactNumber": "C-1", "LastName": "Lee"}]})
    assert by_number.json()["Contacts"][0]["ContactID"] == existing["ContactID"]
    created = api.post("/Contacts", json={"Contacts": [{"Name": "Another Ltd"}]})
    assert created.status_code == 200 and len(org.contacts) == 2


def test_an_unknown_id_is_refused_by_put_and_post(org, api):
    unknown = str(uuid.uuid4())
    for method in ("PUT", "POST"):
        response = api.request(method, "/Contacts", json={"Contacts": [{"ContactID": unknown, "Name": "X"}]})
        assert any("could not be found" in message for message in _errors(response))
    assert api.post(f"/Contacts/{unknown}", json={"Contacts": [{"Name": "X"}]}).status_code == 404
    assert len(org.contacts) == 0


def test_an_existing_name_is_refused_not_matched(org, api):
    """POST matches by ID or ContactNumber, never by Name: a second contact with a taken name is an error."""
    _contact(org)
    for method in ("PUT", "POST"):
        response = api.request(method, "/Contacts", json={"Contacts": [{"Name": "Existing Ltd"}]})
        assert any("already assigned to another contact" in message for message in _errors(response))
    assert len(org.contacts) == 1
