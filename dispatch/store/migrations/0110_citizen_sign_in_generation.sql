-- Citizen access tokens carry the citizen's sign-in generation and are refused once it
-- moves on: bumped when a refresh token is replayed (it leaked) and on "sign out
-- everywhere".  Separate from token_generation, which every refresh rotates, so that
-- an ordinary refresh does not end the access tokens of requests still in flight.
ALTER TABLE citizens ADD COLUMN sign_in_generation integer NOT NULL DEFAULT 0;
