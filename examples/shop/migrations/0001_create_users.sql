-- The users table, as release 0 shipped it.
CREATE TABLE users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL,
    verification_date timestamptz
);
