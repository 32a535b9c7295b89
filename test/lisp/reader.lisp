; The reader: comments, quotes, dotted pairs, vector literals, negative numbers, and its errors
; (each reported with a line number; reading resumes after the bad datum).
(write '(a . (b . (c . ())))) (newline)   ; a comment after code
(write '(1 . 2)) (write '#(1 #(2) "x")) (write '-12) (write '+7) (write '-) (write 'a-b?!) (newline)
(write ''x) (newline)
(write (quote (quote . x))) (newline)
#x
(display "after bad syntax") (newline)
)
(display "after a stray paren") (newline)
99999999999999999999999
(display "after a big literal") (newline)
"bad \q escape"
(display "after a bad escape") (newline)
'(1 . 2 3)
(display "after a bad dotted list") (newline)
(display "the last form is cut off") (newline)
(display "unterminated
