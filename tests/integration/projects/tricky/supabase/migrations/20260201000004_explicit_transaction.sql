BEGIN;
CREATE TABLE public.audit (id serial PRIMARY KEY, what text);
INSERT INTO public.audit (what) VALUES ('explicit');
COMMIT;
