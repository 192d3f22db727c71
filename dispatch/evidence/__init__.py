"""Evidence a citizen hands over: content-addressed files under the data directory,
written and fsynced before the transaction that records them (`files`), and the checks
an uploaded photo passes before it is kept (`images`: JPEG, PNG and WebP only,
re-encoded from its pixels, with no metadata).  Evidence knows nothing of incidents:
the services record what was kept."""
