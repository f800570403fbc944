CREATE FUNCTION public.touch(p_id bigint) RETURNS text
  LANGUAGE plpgsql SET search_path = ''
  AS $body$
DECLARE
  result text := 'a;b';
BEGIN
  /* nested /* comment; */ still comment; */
  UPDATE public.accounts SET note = note || ';' WHERE id = p_id;
  RETURN result || $$;$$;
END
$body$;

CREATE FUNCTION public.add_one(i integer) RETURNS integer
  LANGUAGE sql IMMUTABLE
  BEGIN ATOMIC
    SELECT i + 1;
  END;
