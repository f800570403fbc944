DROP TABLE public.pulled;
