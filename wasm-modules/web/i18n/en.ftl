# The learner app's messages, English. Keys are the same in every language.
app-name = Learning
sign-in-title = Sign in
sign-in-heading = Sign in to learn
username = User name
password = Password
sign-in-submit = Sign in
sign-in-failed = That user name and password do not match. Check them and try again.
language-switch = Language
home-title = Home
welcome = Welcome, { $name }
my-courses = My courses
course-counts = { $lessons } lessons, { $quizzes } quizzes
no-courses = There are no courses on this node yet.
sign-out = Sign out
