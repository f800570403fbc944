-- accounts; a comment; with semicolons
CREATE TABLE public.accounts (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  email text NOT NULL UNIQUE,
  note text DEFAULT 'it''s; fine'
);
INSERT INTO public.accounts (email, note) VALUES ('a@example.com', E'tab\there; and \'quote\'');
