"""Who someone is: argon2id password hashing, the server's signed tokens (citizen and
staff), and the outside parties of identity verification (SMS senders, identity
providers' attestations).  Pure mechanisms with no storage of their own: the services
decide when a password is checked or a token issued, the store keeps what must last."""
