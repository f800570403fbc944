-- Undo demo release 3: the suggestions are derived data, nothing is lost.
DROP TABLE IF EXISTS public.search_suggestions;
