from tests.conftest import make_webhook


def test_pages_render(client, auth, vendor):
    hook = make_webhook(vendor, headers={"X-Api-Key": "abc"}, data={"purpose": "demo"})
    auth.login()
    for url in [
        "/webhooks",
        f"/webhooks/{hook.id}",
        f"/webhooks/{hook.id}/edit",
        f"/webhooks/{hook.id}/delete",
        "/settings/tokens",
        f"/webhooks/{hook.id}?reveal=secret",
    ]:
        r = client.get(url)
        assert r.status_code == 200, (url, r.data[:2000])
    r = client.get("/webhooks/new", follow_redirects=True)
    assert r.status_code == 200
