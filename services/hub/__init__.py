"""The Hugging Face Hub: search, model details with a fit estimate, and downloads into the HF cache.

`connection` (how to reach the hub, its errors and the origin the token may go to), `search`,
`details` (one model's files, card and access), `download` (into the HF cache) and `disk`
(free space before a download).

Everything goes through the real `huggingface_hub` client, so a mirror or a local server set as
the endpoint behaves like the Hub. Tokens are handed to the client and never formatted into
messages; errors are translated into `services.errors` with a next step for the user.

The hub's answers are untrusted: the token goes only to the endpoint's own origin (scheme, host
and port; a redirect or a next-page link elsewhere gets none or is refused), every commit id,
file name, ETag and size is checked before it becomes a path (see `services.transfer`), and an
answer that is not what a Hub sends is a `HubResponseError`, never a traceback.
"""
