DROP FUNCTION public.add_one(integer);
DROP FUNCTION public.touch(bigint);
