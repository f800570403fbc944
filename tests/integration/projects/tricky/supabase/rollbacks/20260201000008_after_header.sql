DROP TABLE public.pulled_two;
