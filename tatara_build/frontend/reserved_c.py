"""Names the generated C cannot use, derived by scripts/reserved-names.py
from the headers the C backend includes (their lowercase macros: tc-gen,
offsetof, barrier-var, …) and from clang (C library functions it knows as
builtins: abs, exit, log, index, …). Regenerate, do not edit:

    .venv/bin/python scripts/reserved-names.py > reserved_c.py && mv reserved_c.py tatara_build/frontend/

A macro is refused for every name; a library builtin only for globals (maps,
programs, functions: clang refuses to redeclare it), since a local variable
may shadow a library function in C. A struct tag the headers define (or a
program context's) is refused as a defbpf-struct name only (`struct NAME`).
"""

C_MACROS = frozenset(
    """
barrier barrier-var container-of offsetof tc-gen
    """.split()
)

C_LIBRARY = frozenset(
    """
abort abs acos acosf acosh acoshf acoshl acosl aligned-alloc alloca asin asinf asinh asinhf asinhl
asinl atan atan2 atan2f atan2l atanf atanh atanhf atanhl atanl bcmp bzero cabs cabsf cabsl cacos
cacosf cacosh cacoshf cacoshl cacosl calloc carg cargf cargl casin casinf casinh casinhf casinhl
casinl catan catanf catanh catanhf catanhl catanl cbrt cbrtf cbrtl ccos ccosf ccosh ccoshf ccoshl
ccosl ceil ceilf ceill cexp cexpf cexpl cimag cimagf cimagl clog clogf clogl conj conjf conjl
copysign copysignf copysignl cos cosf cosh coshf coshl cosl cpow cpowf cpowl cproj cprojf cprojl
creal crealf creall csin csinf csinh csinhf csinhl csinl csqrt csqrtf csqrtl ctan ctanf ctanh ctanhf
ctanhl ctanl erf erfc erfcf erfcl erff erfl exit exp exp2 exp2f exp2l expf expl expm1 expm1f expm1l
fabs fabsf fabsl fdim fdimf fdiml finite finitef finitel floor floorf floorl fma fmaf fmal fmax
fmaxf fmaxl fmin fminf fminl fmod fmodf fmodl fopen fprintf fread free frexp frexpf frexpl fscanf
fwrite hypot hypotf hypotl ilogb ilogbf ilogbl index isalnum isalpha isblank iscntrl isdigit isgraph
islower isprint ispunct isspace isupper isxdigit labs ldexp ldexpf ldexpl lgamma lgammaf lgammal
llabs llrint llrintf llrintl llround llroundf llroundl log log10 log10f log10l log1p log1pf log1pl
log2 log2f log2l logb logbf logbl logf logl lrint lrintf lrintl lround lroundf lroundl malloc
memccpy memchr memcmp memcpy memmove memset modf modff modfl nan nanf nanl nearbyint nearbyintf
nearbyintl nextafter nextafterf nextafterl nexttoward nexttowardf nexttowardl pow powf powl printf
realloc remainder remainderf remainderl remquo remquof remquol rindex rint rintf rintl round roundf
roundl scalbln scalblnf scalblnl scalbn scalbnf scalbnl scanf sin sinf sinh sinhf sinhl sinl
snprintf sprintf sqrt sqrtf sqrtl sscanf stpcpy stpncpy strcasecmp strcat strchr strcmp strcpy
strcspn strdup strerror strlen strncasecmp strncat strncmp strncpy strndup strpbrk strrchr strspn
strstr strtod strtof strtok strtol strtold strtoll strtoul strtoull strxfrm tan tanf tanh tanhf
tanhl tanl tgamma tgammaf tgammal tolower toupper trunc truncf truncl vfork vfprintf vfscanf vprintf
vscanf vsnprintf vsprintf vsscanf wcschr wcscmp wcslen wcsncmp wmemchr wmemcmp wmemcpy wmemmove
    """.split()
)

C_RESERVED = C_MACROS | C_LIBRARY

C_STRUCT_TAGS = frozenset(
    """
btf-ptr pt-regs sk-msg-md sk-reuseport-md tc-basic-pcnt tc-cbq-fopt tc-cbq-lssopt tc-cbq-ovl
tc-cbq-police tc-cbq-wrropt tc-cbq-xstats tc-cbs-qopt tc-choke-qopt tc-choke-xstats tc-cnt
tc-codel-xstats tc-drr-stats tc-estimator tc-etf-qopt tc-fifo-qopt tc-fq-codel-cl-stats
tc-fq-codel-qd-stats tc-fq-codel-xstats tc-fq-pie-xstats tc-fq-qd-stats tc-gred-qopt tc-gred-sopt
tc-hfsc-qopt tc-hfsc-stats tc-hhf-xstats tc-htb-glob tc-htb-opt tc-htb-xstats tc-matchall-pcnt
tc-mqprio-qopt tc-multiq-qopt tc-netem-corr tc-netem-corrupt tc-netem-gemodel tc-netem-gimodel
tc-netem-qopt tc-netem-rate tc-netem-reorder tc-netem-slot tc-pie-xstats tc-plug-qopt tc-police
tc-prio-qopt tc-qfq-stats tc-ratespec tc-red-qopt tc-red-xstats tc-rsvp-gpi tc-rsvp-pinfo
tc-service-curve tc-sfb-qopt tc-sfb-xstats tc-sfq-qopt tc-sfq-qopt-v1 tc-sfq-xstats tc-sfqred-stats
tc-sizespec tc-skbprio-qopt tc-stats tc-tbf-qopt tc-u32-key tc-u32-mark tc-u32-pcnt tc-u32-sel
tcf-ematch-hdr tcf-ematch-tree-hdr tcf-t xdp-md
    """.split()
)
