import marshal, zlib
blob = b"x\x9c\xcbH\xcd\xc9\xc9W(\xcf/\xcaI\x01\x00\x1a\x0b\x04]"
exec(marshal.loads(zlib.decompress(blob)))
